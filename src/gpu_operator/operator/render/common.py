"""What every operand DaemonSet shares: upstream labels, the ``daemonsets.*`` common settings,
tolerations, priority class, update strategy, owner reference, image pull secrets, the
``spec.<component>`` overrides (env merged by name, args replaced, resources), the validation-
file gating init container, and the ``nvidia.com/last-applied-hash`` annotation."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.names import (
    DEPLOY_LABEL_PREFIX,
    GPU_RESOURCE,
    LAST_APPLIED_HASH_ANNOTATION,
)
from gpu_operator.names import VALIDATIONS_DIR as NODE_VALIDATIONS_DIR
from gpu_operator.operator.cluster import ClusterFacts
from gpu_operator.operator.components_v1 import ComponentSpec, EnvVar, ImageSpec
from gpu_operator.operator.images import image_path, pull_policy
from gpu_operator.operator.nvidiadriver import DriverCR
from gpu_operator.operator.policy_v1 import ClusterPolicySpec
from gpu_operator.operator.upstream_images import is_ours

Obj = dict[str, Any]
HASH_ANNOTATION = LAST_APPLIED_HASH_ANNOTATION
PART_OF = "app.kubernetes.io/part-of"
VALIDATIONS_DIR = NODE_VALIDATIONS_DIR
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class RenderContext:
    """Everything a renderer may look at; nothing else (no clock, no API)."""

    spec: ClusterPolicySpec
    namespace: str = "gpu-operator"
    facts: ClusterFacts = field(default_factory=ClusterFacts)
    environ: Mapping[str, str] = field(default_factory=dict)
    policy_name: str = "cluster-policy"
    policy_uid: str | None = None
    nvidia_drivers: tuple[DriverCR, ...] = ()
    """The NVIDIADriver CRs, oldest first (used with ``driver.useNvidiaDriverCRD``)."""

    def image(self, section: ImageSpec | None, path: str) -> str:
        return image_path(section, path, self.environ)

    @property
    def validator_image(self) -> str:
        return self.image(self.spec.validator, "validator")


@dataclass(frozen=True)
class Rendered:
    """A state's result: the objects to apply, or why it renders nothing."""

    objects: tuple[Obj, ...] = ()
    skipped: str | None = None


def content_hash(obj: Mapping[str, Any]) -> str:
    """A stable hash of an object's rendered content (the annotation itself excluded)."""
    meta = dict(obj.get("metadata") or {})
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HASH_ANNOTATION}
    meta["annotations"] = notes
    text = json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finish(ctx: RenderContext, obj: Obj) -> Obj:
    """Namespace (namespaced kinds), owner reference and hash annotation on a rendered object
    (a deep copy: rendered objects never share parts)."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if obj["kind"] not in ("RuntimeClass", "DeviceClass"):  # cluster-scoped
        meta["namespace"] = ctx.namespace
    if ctx.policy_uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": "nvidia.com/v1",
                "kind": "ClusterPolicy",
                "name": ctx.policy_name,
                "uid": ctx.policy_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = content_hash(obj)
    return obj


def merge_env(base: Sequence[Obj], overrides: Sequence[EnvVar] | None) -> list[Obj]:
    """``base`` with ``overrides`` set or overwritten by name (upstream's rule), order kept."""
    env = copy.deepcopy(list(base))
    for var in overrides or ():
        for entry in env:
            if entry["name"] == var.name:
                entry.clear()
                entry.update({"name": var.name, "value": var.value})
                break
        else:
            env.append({"name": var.name, "value": var.value})
    return env


def plain_env(**values: str) -> list[Obj]:
    return [{"name": k, "value": v} for k, v in values.items()]


NODE_NAME_ENV = {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}


def container(
    ctx: RenderContext,
    section: ComponentSpec | None,
    path: str,
    name: str,
    *,
    command: list[str],
    env: Sequence[Obj] = (),
    args: list[str] | None = None,
    mounts: Sequence[Obj] = (),
    privileged: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Obj:
    """A main container with the section's image, pull policy, env, args and resources."""
    out: Obj = {
        "name": name,
        "image": ctx.image(section, path),
        "imagePullPolicy": pull_policy(section),
        "command": command,
    }
    chosen_args = section.args if section and section.args else args
    if chosen_args:
        out["args"] = list(chosen_args)
    merged = merge_env(env, section.env if section else None)
    if merged:
        out["env"] = merged
    if section and section.resources:
        out["resources"] = section.resources.model_dump(exclude_none=True)
    if mounts:
        out["volumeMounts"] = list(mounts)
    if privileged:
        out["securityContext"] = {"privileged": True}
    out.update(extra or {})
    if section and section.securityContext:  # v1.9-era: the user's fields over ours
        out["securityContext"] = {**out.get("securityContext", {}), **section.securityContext}
    return out


def validation_mount() -> Obj:
    return {
        "name": "run-nvidia-validations",
        "mountPath": VALIDATIONS_DIR,
        "mountPropagation": "HostToContainer",
    }


def wait_command(image: str, ready_file: str) -> dict[str, list[str]]:
    """How a container of ``image`` waits for ``/run/nvidia/validations/<ready_file>``: our
    image's ``gpu-operator wait-for`` (inotify, no 5 s polls); any other image (NVIDIA's
    validator) upstream's shell loop, the command NVIDIA's images ship for it."""
    path = f"{VALIDATIONS_DIR}/{ready_file}"
    if is_ours(image):
        return {"command": ["gpu-operator", "wait-for", path]}
    return {
        "command": ["sh", "-c"],
        "args": [
            f"until [ -f {path} ]; do echo waiting for nvidia container stack to be setup; "
            "sleep 5; done"
        ],
    }


def wait_for(ctx: RenderContext, name: str, ready_file: str) -> Obj:
    """An init container of the validator's image that blocks until
    ``/run/nvidia/validations/<ready_file>`` exists, so the pod starts once the node is ready."""
    image = ctx.validator_image
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy(ctx.spec.validator),
        **wait_command(image, ready_file),
        "securityContext": {"privileged": True},
        "volumeMounts": [validation_mount()],
    }


def host_volume(name: str, path: str, kind: str | None = None) -> Obj:
    host: Obj = {"path": path}
    if kind:
        host["type"] = kind
    return {"name": name, "hostPath": host}


def validations_volume() -> Obj:
    return host_volume("run-nvidia-validations", VALIDATIONS_DIR, "DirectoryOrCreate")


def _tolerations(ctx: RenderContext) -> list[Obj]:
    result: list[Obj] = [dict(GPU_TOLERATION)]
    for toleration in ctx.spec.daemonsets.tolerations or ():
        if toleration not in result:
            result.append(dict(toleration))
    return result


def _pull_secrets(sections: Sequence[ImageSpec | None]) -> list[Obj]:
    names: list[str] = []
    for section in sections:
        for secret in (section.imagePullSecrets if section else None) or ():
            if secret not in names:
                names.append(secret)
    return [{"name": n} for n in names]


def daemonset(
    ctx: RenderContext,
    name: str,
    *,
    containers: list[Obj],
    init_containers: Sequence[Obj] = (),
    volumes: Sequence[Obj] = (),
    node_selector: Mapping[str, str],
    service_account: str,
    sections: Sequence[ImageSpec | None] = (),
    pod: Mapping[str, Any] | None = None,
    on_delete: bool = False,
    priority_class: str | None = None,
    runtime_class: bool = False,
    affinity: Obj | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> Obj:
    """An operand DaemonSet with upstream's labels and the ``daemonsets.*`` settings."""
    common = ctx.spec.daemonsets
    labels = {**(common.labels or {}), **(extra_labels or {}), "app": name, PART_OF: "gpu-operator"}
    pod_meta: Obj = {"labels": labels}
    if common.annotations:
        pod_meta["annotations"] = dict(common.annotations)
    spec: Obj = {
        "serviceAccountName": service_account,
        "nodeSelector": dict(node_selector),
        "tolerations": _tolerations(ctx),
    }
    priority = priority_class or common.priorityClassName
    if priority:
        spec["priorityClassName"] = priority
    if runtime_class:
        spec["runtimeClassName"] = ctx.spec.operator.runtimeClass
    if affinity:
        spec["affinity"] = affinity
    if common.podSecurityContext:
        spec["securityContext"] = dict(common.podSecurityContext)
    secrets = _pull_secrets([*sections, ctx.spec.validator if init_containers else None])
    if secrets:
        spec["imagePullSecrets"] = secrets
    if init_containers:
        spec["initContainers"] = list(init_containers)
    spec["containers"] = containers
    if volumes:
        spec["volumes"] = list(volumes)
    if any(isinstance(s, ComponentSpec) and s.hostNetwork for s in sections[:1]):
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    spec.update(pod or {})
    if on_delete or common.updateStrategy == "OnDelete":
        strategy: Obj = {"type": "OnDelete"}
    else:
        unavailable = common.rollingUpdate.maxUnavailable if common.rollingUpdate else None
        strategy = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": int_or_percent(unavailable or "1")},
        }
    obj: Obj = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": strategy,
            "template": {"metadata": pod_meta, "spec": spec},
        },
    }
    return finish(ctx, obj)


def int_or_percent(text: str) -> int | str:
    """Upstream's string ``maxUnavailable`` as a DaemonSet takes it: "1" → 1, "10%" stays."""
    return int(text) if text.isdigit() else text


def deploy_selector(state: str) -> dict[str, str]:
    return {f"{DEPLOY_LABEL_PREFIX}{state}": "true"}


def config_map(ctx: RenderContext, name: str, data: Mapping[str, str]) -> Obj:
    return finish(
        ctx,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {PART_OF: "gpu-operator"}},
            "data": dict(data),
        },
    )


def service(ctx: RenderContext, name: str, app: str, ports: list[Obj], **extra: Any) -> Obj:
    spec: Obj = {"selector": {"app": app}, "ports": ports, **{k: v for k, v in extra.items() if v}}
    return finish(
        ctx,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {"app": app, PART_OF: "gpu-operator"}},
            "spec": spec,
        },
    )
