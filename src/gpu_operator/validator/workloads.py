"""The validation pods, shaped as upstream's manifests (``cuda-workload-validation.yaml`` and
``plugin-workload-validation.yaml``): pure builders of plain dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpu_operator.names import GPU_RESOURCE, MANAGEMENT_CDI_KIND, MIG_RESOURCE_PREFIX

CUDA_APP = "nvidia-cuda-validator"
PLUGIN_APP = "nvidia-device-plugin-validator"
SERVICE_ACCOUNT = "nvidia-operator-validator"
# Upstream's entry point: both NVIDIA's validator image and ours ship `vectorAdd`.
WORKLOAD_COMMAND = ["vectorAdd"]


@dataclass(frozen=True)
class PodSettings:
    """``VALIDATOR_IMAGE``, ``VALIDATOR_IMAGE_PULL_POLICY``, ``VALIDATOR_IMAGE_PULL_SECRETS``,
    ``VALIDATOR_RUNTIME_CLASS`` and where the pod goes."""

    node: str
    namespace: str
    image: str = "gpu-operator:latest"
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()
    runtime_class: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    """Extra env for the workload container (e.g. ``GPU_OPERATOR_SIM`` in the sandbox)."""


def _pod(settings: PodSettings, app: str, init: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": settings.node,
        "serviceAccountName": SERVICE_ACCOUNT,
        "restartPolicy": "OnFailure",
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "initContainers": [init],
        "containers": [
            {
                "name": app,
                "image": settings.image,
                "imagePullPolicy": settings.pull_policy,
                "command": ["sh", "-c"],
                "args": ["echo cuda workload validation is successful"],
                "securityContext": {"readOnlyRootFilesystem": True},
            }
        ],
    }
    if settings.pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in settings.pull_secrets]
    if settings.runtime_class:
        spec["runtimeClassName"] = settings.runtime_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{app}-",
            "namespace": settings.namespace,
            "labels": {"app": app},
        },
        "spec": spec,
    }


def _env(settings: PodSettings, extra: dict[str, str]) -> list[dict[str, str]]:
    merged = {**extra, **dict(settings.env)}
    return [{"name": k, "value": v} for k, v in merged.items()]


def cuda_pod(settings: PodSettings) -> dict[str, Any]:
    init = {
        "name": "cuda-validation",
        "image": settings.image,
        "imagePullPolicy": settings.pull_policy,
        "command": WORKLOAD_COMMAND,
        "env": _env(settings, {"NVIDIA_VISIBLE_DEVICES": "all"}),
        "securityContext": {"privileged": True},
    }
    pod = _pod(settings, CUDA_APP, init)
    pod["metadata"]["annotations"] = {
        "nvidia.cdi.k8s.io/container.cuda-validation": f"{MANAGEMENT_CDI_KIND}=all"
    }
    return pod


def plugin_pod(settings: PodSettings, resource: str) -> dict[str, Any]:
    init = {
        "name": "plugin-validation",
        "image": settings.image,
        "imagePullPolicy": settings.pull_policy,
        "command": WORKLOAD_COMMAND,
        "env": _env(settings, {}),
        "resources": {"limits": {resource: 1}, "requests": {resource: 1}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    return _pod(settings, PLUGIN_APP, init)


def gpu_resource(capacity: dict[str, str]) -> str | None:
    """The resource the plugin pod asks for: the first ``nvidia.com/mig-*`` with capacity,
    else the first ``nvidia.com/gpu*`` (upstream's order)."""

    def has(name: str) -> bool:
        try:
            return int(str(capacity[name])) >= 1
        except ValueError:
            return False

    migs = sorted(n for n in capacity if n.startswith(MIG_RESOURCE_PREFIX) and has(n))
    gpus = sorted(n for n in capacity if n.startswith(GPU_RESOURCE) and has(n))
    chosen = migs or gpus
    return chosen[0] if chosen else None
