"""``gpu-operator preflight --from-cluster`` (cluster part): before install, what the cluster
already is — Kubernetes (kubelet) versions, GPU nodes and their OSes, NFD or not, container
runtimes and whether they support CDI, MIG-capable GPUs and their current layouts, and a device
plugin or GPU operator already running that would conflict. Pure checks over Node and Pod
objects; the driver images are the driver part's (``commands.preflight``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gpu_operator.names import (
    GPU_PRESENT_LABEL,
    MIG_CAPABLE_LABEL,
    MIG_CONFIG_LABEL,
    MIG_CONFIG_STATE_LABEL,
)
from gpu_operator.nfd import NFD_PREFIX, OS_ID_LABEL, OS_VERSION_LABEL, has_nvidia_gpu

Obj = Mapping[str, Any]
Level = Literal["ok", "warn", "fail"]
MIN_KUBELET = (1, 25)
CDI_SINCE = {"containerd": (1, 7), "cri-o": (1, 23)}
PART_OF = "app.kubernetes.io/part-of"


@dataclass(frozen=True)
class Check:
    level: Level
    message: str

    def line(self) -> str:
        return f"{self.level:<4}  {self.message}"


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def cluster_checks(nodes: Sequence[Obj], pods: Sequence[Obj]) -> list[Check]:
    checks: list[Check] = []
    info = {n["metadata"]["name"]: (n.get("status") or {}).get("nodeInfo") or {} for n in nodes}
    kubelets = sorted({i["kubeletVersion"] for i in info.values() if i.get("kubeletVersion")})
    old = [v for v in kubelets if _version(v) < MIN_KUBELET]
    if old:
        checks.append(
            Check("fail", f"kubelet {', '.join(old)} is older than 1.25 (PodResources v1)")
        )
    elif kubelets:
        checks.append(Check("ok", f"kubelet {', '.join(kubelets)}"))
    else:
        checks.append(Check("warn", "kubelet versions unknown (nodes report no nodeInfo)"))
    labelled = [
        n
        for n in nodes
        if any(k.startswith(NFD_PREFIX) for k in (n["metadata"].get("labels") or {}))
    ]
    gpu = [n for n in nodes if has_nvidia_gpu(n["metadata"].get("labels") or {})]
    if not labelled:
        checks.append(
            Check(
                "warn",
                "no NFD labels on any node: install with nfd.enabled=true (our node labeller)"
                " or run NFD",
            )
        )
    else:
        checks.append(Check("ok", f"NFD labels on {len(labelled)}/{len(nodes)} nodes"))
    if not gpu:
        checks.append(
            Check("warn", f"no GPU node found yet (no NVIDIA PCI label, no {GPU_PRESENT_LABEL})")
        )
    for node in gpu:
        name, labels = node["metadata"]["name"], node["metadata"].get("labels") or {}
        node_info = info[name]
        os_id = labels.get(OS_ID_LABEL)
        os_version = labels.get(OS_VERSION_LABEL)
        os_text = (
            f"{os_id} {os_version}"
            if os_id and os_version
            else f"{node_info.get('osImage', '?')} (no NFD OS labels: no driver image fits)"
        )
        runtime = str(node_info.get("containerRuntimeVersion", "?"))
        kind, _, version = runtime.partition("://")
        cdi = CDI_SINCE.get(kind)
        cdi_text = (
            "CDI supported" if cdi and _version(version) >= cdi else "no CDI (device list via env)"
        )
        mig = ""
        if labels.get(MIG_CAPABLE_LABEL) == "true":
            config = labels.get(MIG_CONFIG_LABEL, "none")
            state = labels.get(MIG_CONFIG_STATE_LABEL, "not applied")
            mig = f"; MIG capable, config {config} ({state})"
        level: Level = "ok" if os_id and os_version else "warn"
        checks.append(Check(level, f"{name}: {os_text}; {runtime}: {cdi_text}{mig}"))
    for pod in pods:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        images = " ".join(
            c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []
        )
        foreign = labels.get(PART_OF) != "gpu-operator"
        if foreign and ("k8s-device-plugin" in images or "nvidia-device-plugin" in meta["name"]):
            checks.append(
                Check(
                    "fail",
                    f"a device plugin already runs: {meta['namespace']}/{meta['name']} ({images});"
                    " remove it or deploy with devicePlugin.enabled=false",
                )
            )
        elif foreign and "gpu-operator" in images and meta.get("namespace") != "gpu-operator":
            checks.append(
                Check(
                    "warn",
                    f"another GPU operator may run: {meta['namespace']}/{meta['name']} ({images})",
                )
            )
    return checks
