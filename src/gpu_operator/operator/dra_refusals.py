"""When the operator refuses ``draDriver.enabled`` (pure): the cluster is older than Kubernetes
1.34 (``resource.k8s.io/v1``, DRA's GA API) or does not serve that API, or the device plugin
would serve the same GPUs. NVIDIA's DRA driver docs say to disable the device plugin for the
GPUs the DRA driver manages: both on one node would hand one GPU to two allocators. A split is
fine: ``draDriver.nodeSelector`` naming nodes where the device plugin does not run (e.g. those
labelled ``nvidia.com/gpu.deploy.device-plugin=false``, a value the operator never overwrites).

Each refusal is one line naming the field and what to do; the reconciler turns them into a
failed pass (status condition + Event, nothing applied), ``gpu-operator preflight`` prints them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpu_operator.names import DEPLOY_LABEL_PREFIX
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled

MIN_KUBERNETES = (1, 34)
DRA_API = "resource.k8s.io/v1"
DEVICE_PLUGIN_LABEL = f"{DEPLOY_LABEL_PREFIX}device-plugin"
DRA_DRIVER_LABEL = f"{DEPLOY_LABEL_PREFIX}dra-driver"
SHOWN_NODES = 5


@dataclass(frozen=True)
class ApiFacts:
    """What the API server says of itself: ``/version`` (major, minor) and whether it serves
    ``resource.k8s.io/v1``. ``None`` where not asked (``gpu-operator render`` from files)."""

    version: tuple[int, int] | None = None
    dra_served: bool | None = None


def parse_version(info: Mapping[str, object]) -> tuple[int, int] | None:
    """``/version``'s major and minor (``"1"``, ``"33+"`` as some providers write it), else the
    ``gitVersion`` (``v1.33.2``); ``None`` when neither reads."""
    major = re.match(r"\d+", str(info.get("major") or ""))
    minor = re.match(r"\d+", str(info.get("minor") or ""))
    if major and minor:
        return int(major.group()), int(minor.group())
    git = re.match(r"v?(\d+)\.(\d+)", str(info.get("gitVersion") or ""))
    return (int(git.group(1)), int(git.group(2))) if git else None


def _dra_nodes(spec: ClusterPolicySpec, nodes: Iterable[NodeFacts]) -> list[NodeFacts]:
    wanted = {DRA_DRIVER_LABEL: "true", **((spec.draDriver and spec.draDriver.nodeSelector) or {})}
    return [n for n in nodes if all(n.labels.get(k) == v for k, v in wanted.items())]


def refusals(spec: ClusterPolicySpec, gpu_nodes: Iterable[NodeFacts], api: ApiFacts) -> list[str]:
    """Why ``draDriver.enabled`` can't be carried out here (empty: it can, or it is off).
    ``gpu_nodes``: the GPU nodes as they will be labelled."""
    if not enabled(spec, "draDriver"):
        return []
    found = []
    if api.version is not None and api.version < MIN_KUBERNETES:
        have = ".".join(map(str, api.version))
        found.append(
            f"draDriver.enabled: Kubernetes {have} is older than 1.34, where DRA "
            f"({DRA_API}) is GA: upgrade the cluster or set draDriver.enabled=false"
        )
    elif api.dra_served is False:
        found.append(
            f"draDriver.enabled: the API server does not serve {DRA_API} (DRA): enable it "
            "(--runtime-config) or set draDriver.enabled=false"
        )
    if enabled(spec, "devicePlugin"):
        selector = (spec.draDriver and spec.draDriver.nodeSelector) or {}
        if not selector:
            found.append(
                "draDriver.enabled with devicePlugin.enabled: both would serve every GPU "
                "node's GPUs; set devicePlugin.enabled=false, or draDriver.nodeSelector to "
                f"nodes labelled {DEVICE_PLUGIN_LABEL}=false"
            )
        else:
            both = sorted(
                n.name
                for n in _dra_nodes(spec, gpu_nodes)
                if n.labels.get(DEVICE_PLUGIN_LABEL) == "true"
            )
            if both:
                shown = ", ".join(both[:SHOWN_NODES]) + (
                    f" and {len(both) - SHOWN_NODES} more" if len(both) > SHOWN_NODES else ""
                )
                found.append(
                    f"draDriver.enabled with devicePlugin.enabled: both would serve the GPUs of "
                    f"node {shown} (draDriver.nodeSelector selects it and it has "
                    f"{DEVICE_PLUGIN_LABEL}=true); label it {DEVICE_PLUGIN_LABEL}=false or "
                    "narrow draDriver.nodeSelector"
                )
    return found
