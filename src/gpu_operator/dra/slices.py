"""The node's ResourceSlice: one slice per node, pool = node name, every full GPU a device,
and a DRA device taint (``resource.k8s.io/v1`` ``Device.taints``) on each device that health
marked unusable — upstream's keys: ``gpu.nvidia.com/xid`` with the XID as value for a critical
XID, ``gpu.nvidia.com/gpu-lost`` for a GPU that fell off the bus (both, for XID 79 then lost),
``gpu.nvidia.com/unmonitored`` when health could not be watched at all; all ``NoSchedule``
(upstream gives ``unmonitored`` the effect ``None``; here, as for the device plugin, a device
whose health is unknown is not handed out). Pure:
the desired slice from the devices, the taints and the pool generation; whether a stored slice
already says the same (so a steady node writes nothing)."""

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


def slice_name(node: str) -> str:
    """Our one slice's name: ``<node>-gpu.nvidia.com`` (a DNS subdomain, stable per node)."""
    return f"{node}-{DRIVER_NAME}"


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
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": slice_name(node)},
        "spec": {
            "driver": DRIVER_NAME,
            "nodeName": node,
            "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
            "devices": published,
        },
    }


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
