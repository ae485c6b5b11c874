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


def _gpu_node(labels: Mapping[str, str]) -> bool:
    return labels.get("nvidia.com/gpu.present") == "true" or any(
        labels.get(k) == "true"
        for k in (
            "feature.node.kubernetes.io/pci-10de.present",
            "feature.node.kubernetes.io/pci-0302_10de.present",
            "feature.node.kubernetes.io/pci-0300_10de.present",
        )
    )


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
        if any(
            k.startswith("feature.node.kubernetes.io/") for k in (n["metadata"].get("labels") or {})
        )
    ]
    gpu = [n for n in nodes if _gpu_node(n["metadata"].get("labels") or {})]
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
            Check("warn", "no GPU node found yet (no NVIDIA PCI label, no nvidia.com/gpu.present)")
        )
    for node in gpu:
        name, labels = node["metadata"]["name"], node["metadata"].get("labels") or {}
        node_info = info[name]
        os_id = labels.get("feature.node.kubernetes.io/system-os_release.ID")
        os_version = labels.get("feature.node.kubernetes.io/system-os_release.VERSION_ID")
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
        if labels.get("nvidia.com/mig.capable") == "true":
            config = labels.get("nvidia.com/mig.config", "none")
            state = labels.get("nvidia.com/mig.config.state", "not applied")
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
