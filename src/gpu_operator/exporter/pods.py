"""Pod attribution: which pod, namespace and container hold each GPU or GPU instance.

Pure: device ids from the kubelet's PodResources ``List`` become a map from dcgm-exporter's
entity keys (``GPU-<uuid>`` or ``nvidia<N>`` for whole GPUs, ``<gpu>-<GI id>`` for GPU
instances) to pods, with upstream's parsing rules (MIG UUIDs, ``::n`` replicas, GKE ids).
The gRPC call that fetches the list lives with the kubelet API client; this module never
does I/O, so the exporter can refresh the map on its own timer and never per scrape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from gpu_operator.names import (
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    SHARED_GPU_RESOURCE,
    dra_gpu_device,
    parse_dra_mig_device,
)
from gpu_operator.podresources import DRA_RESOURCE_PREFIX, ContainerDevices, device_uuid

MIG_PREFIX = MIG_RESOURCE_PREFIX
# Beyond upstream: time-slicing with renameByDefault advertises nvidia.com/gpu.shared.

_GKE_MIG = re.compile(r"nvidia(\d+)/gi(\d+)(?:/vgpu\d+)?")
_GKE_SHARED = re.compile(r"(nvidia\d+)/vgpu\d+")
DRA_GPU_RESOURCE = DRA_RESOURCE_PREFIX + "gpu.nvidia.com"
"""A DRA claim's device of NVIDIA's driver: ``gpu-<minor>`` or a dynamic MIG device
``gpu-<minor>-mig-<profile>-<GI profile id>-<start>``."""


def dra_key(device: str) -> str:
    """The key ``Pass.dra_devices`` files a DRA device under: ``gpu-<minor>`` for a GPU,
    ``gpu-<minor>-mig-<GI profile id>-<start>`` for a MIG device."""
    parsed = parse_dra_mig_device(device)
    return device if parsed is None else f"{dra_gpu_device(parsed[0])}-mig-{parsed[1]}-{parsed[2]}"


@dataclass(frozen=True)
class PodRef:
    pod: str
    namespace: str
    container: str
    uid: str = ""
    """From the API server, with ``--kubernetes-enable-pod-uid``."""
    labels: tuple[tuple[str, str], ...] = ()
    """Series labels from the pod's labels, with ``--kubernetes-enable-pod-labels``."""


PodMeta = Callable[[str, str], tuple[str, Mapping[str, str]] | None]
"""(namespace, pod) → (uid, labels), ``None`` for a pod that is gone (an API lookup)."""

_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def series_labels(
    labels: Mapping[str, str], allow: Sequence[re.Pattern[str]] = ()
) -> tuple[tuple[str, str], ...]:
    """A pod's labels as series labels, as dcgm-exporter makes them: only keys some ``allow``
    pattern matches (all when there is none), every character outside ``[a-zA-Z0-9_]`` of the
    name replaced by ``_``; sorted."""
    return tuple(
        sorted(
            (_NOT_LABEL_CHAR.sub("_", key), value)
            for key, value in labels.items()
            if not allow or any(p.search(key) for p in allow)
        )
    )


def with_metadata(
    pods: Mapping[str, PodRef], meta: PodMeta, allow: Sequence[re.Pattern[str]] = ()
) -> dict[str, PodRef]:
    """``pods`` with each pod's UID and series labels (one lookup per pod)."""
    found: dict[tuple[str, str], tuple[str, Mapping[str, str]] | None] = {}
    out = {}
    for key, ref in pods.items():
        name = (ref.namespace, ref.pod)
        if name not in found:
            found[name] = meta(*name)
        got = found[name]
        out[key] = (
            ref if got is None else replace(ref, uid=got[0], labels=series_labels(got[1], allow))
        )
    return out


def counts(resource: str, extra_resources: Iterable[str]) -> bool:
    return (
        resource in (GPU_RESOURCE, SHARED_GPU_RESOURCE, DRA_GPU_RESOURCE)
        or resource.startswith(MIG_PREFIX)
        or resource in set(extra_resources)
    )


def entity_key(device_id: str, mig_parents: Mapping[str, tuple[int, int]]) -> str | None:
    """The entity key a device id refers to; ``None`` for a MIG UUID this node doesn't have."""
    base = device_uuid(device_id)
    if base.startswith("MIG-"):
        parent = mig_parents.get(base)
        return None if parent is None else f"{parent[0]}-{parent[1]}"
    if match := _GKE_MIG.fullmatch(base):
        return f"{match.group(1)}-{match.group(2)}"
    if match := _GKE_SHARED.fullmatch(base):
        return match.group(1)
    return base


def pod_map(
    entries: Iterable[ContainerDevices],
    mig_parents: Mapping[str, tuple[int, int]],
    extra_resources: Iterable[str] = (),
    dra_devices: Mapping[str, str] | None = None,
) -> dict[str, PodRef]:
    """Entity key → pod. ``mig_parents`` maps MIG UUIDs to (GPU index, GI id), ``dra_devices``
    DRA device keys (``dra_key``) to entity keys. When several containers share one device
    (time-slicing), the last one listed wins, as upstream."""
    extra = tuple(extra_resources)
    out: dict[str, PodRef] = {}
    for entry in entries:
        if not counts(entry.resource_name, extra):
            continue
        dra = entry.resource_name == DRA_GPU_RESOURCE
        for device_id in entry.device_ids:
            if dra:
                key = (dra_devices or {}).get(dra_key(device_id))
            else:
                key = entity_key(device_id, mig_parents)
            if key is not None:
                out[key] = PodRef(entry.pod, entry.namespace, entry.container)
    return out
