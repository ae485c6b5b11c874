"""The node's ResourceSlice: one slice per node, pool = node name, every full GPU a device,
and a DRA device taint (``resource.k8s.io/v1`` ``Device.taints``) on each device that health
marked unusable — upstream's keys: ``gpu.nvidia.com/xid`` with the XID as value for a critical
XID, ``gpu.nvidia.com/gpu-lost`` for a GPU that fell off the bus (both, for XID 79 then lost),
``gpu.nvidia.com/unmonitored`` when health could not be watched at all; all ``NoSchedule``
(upstream gives ``unmonitored`` the effect ``None``; here, as for the device plugin, a device
whose health is unknown is not handed out). Pure:
the desired slice from the devices, the taints and the pool generation; whether a stored slice
already says the same (so a steady node writes nothing).

With dynamic MIG a node's pool spans several slices (``build_pool``), as Kubernetes 1.35
requires: the counter sets in slices of their own (``sharedCounters`` and ``devices`` may not
share a slice; at most 8 counter sets a slice), the devices in slices of at most 64 (the limit
when devices consume counters or carry taints), each GPU's devices kept in one slice; every
slice of the pool carries the same generation and ``resourceSliceCount``. A MIG device carries
its parent GPU's taints."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpu_operator.dra import DRIVER_NAME

API_VERSION = "resource.k8s.io/v1"
KIND = "ResourceSlice"
TAINT_XID = f"{DRIVER_NAME}/xid"
TAINT_GPU_LOST = f"{DRIVER_NAME}/gpu-lost"
TAINT_UNMONITORED = f"{DRIVER_NAME}/unmonitored"
TAINT_EFFECT = "NoSchedule"


@dataclass(frozen=True)
class Taint:
    """A device taint: ``key``, optional ``value``, ``effect``."""

    key: str
    value: str = ""
    effect: str = TAINT_EFFECT

    def to_api(self) -> dict[str, Any]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


def health_taints(xid: int | None, lost: bool) -> list[Taint]:
    """The taints of an unhealthy device: its last critical XID, lost if it fell off the bus,
    unmonitored when neither explains it (health checks failed)."""
    taints = [Taint(TAINT_XID, str(xid))] if xid is not None else []
    if lost:
        taints.append(Taint(TAINT_GPU_LOST))
    return taints or [Taint(TAINT_UNMONITORED)]


MAX_DEVICES = 64
"""Devices in a slice when any consumes counters or has taints (Kubernetes'
``ResourceSliceMaxDevicesWithTaintsOrConsumesCounters``)."""
MAX_COUNTER_SETS = 8
"""Counter sets in a slice (``ResourceSliceMaxCounterSets``)."""


def slice_name(node: str, part: int = 0) -> str:
    """Our slice's name: ``<node>-gpu.nvidia.com`` (a DNS subdomain, stable per node), and
    ``…-<part>`` for the further device slices of a pool that needs several."""
    return f"{node}-{DRIVER_NAME}" + (f"-{part}" if part else "")


def counters_slice_name(node: str, part: int = 0) -> str:
    """``<node>-gpu.nvidia.com-counters`` (``…-counters-<part>`` past 8 counter sets)."""
    return f"{node}-{DRIVER_NAME}-counters" + (f"-{part}" if part else "")


@dataclass(frozen=True)
class GpuGroup:
    """One GPU's part of the pool: its whole-GPU device name (whose taints all its devices
    carry), its counter sets (dynamic MIG) and its devices."""

    gpu: str
    devices: tuple[Mapping[str, Any], ...]
    shared_counters: tuple[Mapping[str, Any], ...] = ()


def _spec(node: str, generation: int, count: int) -> dict[str, Any]:
    return {
        "driver": DRIVER_NAME,
        "nodeName": node,
        "pool": {"name": node, "generation": generation, "resourceSliceCount": count},
    }


def _slice(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


def build_pool(
    node: str,
    groups: Sequence[GpuGroup],
    taints: Mapping[str, Sequence[Taint]],
    generation: int,
) -> list[dict[str, Any]]:
    """The node's slices: without counter sets the one slice of ``build_slice``; with them the
    counter slices, then device slices of whole GPUs, at most ``MAX_DEVICES`` devices each."""
    counter_sets = [c for g in groups for c in g.shared_counters]
    if not counter_sets:
        return [build_slice(node, [d for g in groups for d in g.devices], taints, generation)]
    parts: list[list[dict[str, Any]]] = [[]]
    for group in groups:
        tainted = [t.to_api() for t in taints.get(group.gpu) or ()]
        devices = []
        for device in group.devices:
            entry = dict(device)  # shared below the top level: the publishers copy what they keep
            if tainted:
                entry["taints"] = copy.deepcopy(tainted)
            devices.append(entry)
        if len(devices) > MAX_DEVICES:
            raise ValueError(f"{group.gpu}: {len(devices)} devices, a slice holds {MAX_DEVICES}")
        if parts[-1] and len(parts[-1]) + len(devices) > MAX_DEVICES:
            parts.append([])
        parts[-1].extend(devices)
    counter_parts = [
        counter_sets[i : i + MAX_COUNTER_SETS]
        for i in range(0, len(counter_sets), MAX_COUNTER_SETS)
    ]
    count = len(parts) + len(counter_parts)
    out = []
    for i, sets in enumerate(counter_parts):
        spec = _spec(node, generation, count)
        spec["sharedCounters"] = [copy.deepcopy(dict(c)) for c in sets]
        out.append(_slice(counters_slice_name(node, i), spec))
    for i, devices in enumerate(parts):
        spec = _spec(node, generation, count)
        spec["devices"] = devices
        out.append(_slice(slice_name(node, i), spec))
    return out


def build_slice(
    node: str,
    devices: Sequence[Mapping[str, Any]],
    taints: Mapping[str, Sequence[Taint]],
    generation: int,
) -> dict[str, Any]:
    """The ResourceSlice for ``node``: ``devices`` (by name) with ``taints`` added."""
    published = []
    for device in devices:
        entry = copy.deepcopy(dict(device))
        if taints.get(entry["name"]):
            entry["taints"] = [t.to_api() for t in taints[entry["name"]]]
        published.append(entry)
    spec = _spec(node, generation, 1)
    spec["devices"] = published
    return _slice(slice_name(node), spec)


def _comparable(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec without what the server adds (a taint's ``timeAdded``) or we bump (generation)."""
    out = copy.deepcopy(dict(spec))
    out.get("pool", {}).pop("generation", None)
    for device in out.get("devices") or []:
        for taint in device.get("taints") or []:
            taint.pop("timeAdded", None)
    return out


def same_content(stored: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether ``stored`` (a slice read back) already publishes ``desired``'s devices."""
    if stored is None:
        return False
    return _comparable(stored.get("spec") or {}) == _comparable(desired["spec"])


def generation_of(body: Mapping[str, Any]) -> int:
    return int(((body.get("spec") or {}).get("pool") or {}).get("generation") or 0)


def pool_is_current(
    stored: Mapping[str, Mapping[str, Any]], desired: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether the node's stored slices (by name) are exactly ``desired``'s, all of one
    generation: then nothing is written."""
    if set(stored) != {d["metadata"]["name"] for d in desired}:
        return False
    if len({generation_of(s) for s in stored.values()}) > 1:
        return False
    return all(same_content(stored[d["metadata"]["name"]], d) for d in desired)


def with_generation(body: Mapping[str, Any], generation: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(body))
    out["spec"]["pool"]["generation"] = generation
    return out
