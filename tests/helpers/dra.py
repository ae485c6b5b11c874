"""ResourceSlices, DeviceClasses, claims and pods as the DRA tests write them (plain dicts)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
DRIVER = "gpu.nvidia.com"
GPU_CLASS_SELECTOR = (
    "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'"
)
MIG_CLASS_SELECTOR = (
    "device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'mig'"
)


def device_class(name: str, expression: str) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": expression}}]},
    }


CLASSES = {
    "gpu.nvidia.com": device_class("gpu.nvidia.com", GPU_CLASS_SELECTOR),
    "mig.nvidia.com": device_class("mig.nvidia.com", MIG_CLASS_SELECTOR),
}


def gpu(index: int, product: str = "NVIDIA H100 80GB HBM3", memory: str = "80Gi") -> Obj:
    return {
        "name": f"gpu-{index}",
        "attributes": {
            "type": {"string": "gpu"},
            "index": {"int": index},
            "productName": {"string": product},
            "driverVersion": {"version": "560.35.3"},
            "uuid": {"string": f"GPU-{index:08d}"},
        },
        "capacity": {"memory": {"value": memory}},
    }


def node_slice(
    node: str,
    devices: list[Obj],
    *,
    generation: int = 1,
    counters: list[Obj] | None = None,
    name: str | None = None,
) -> Obj:
    spec: Obj = {
        "driver": DRIVER,
        "nodeName": node,
        "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
        "devices": devices,
    }
    if counters:
        spec["sharedCounters"] = counters
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name or f"{node}-{DRIVER}-{generation}"},
        "spec": spec,
    }


def partitioned_gpu(index: int) -> tuple[Obj, list[Obj]]:
    """One 80 GB GPU as partitionable devices: the whole GPU, 3g.40gb and 1g.10gb MIG devices,
    all drawing on one counter set (8 memory slices, 7 compute slices)."""
    counter_set = f"gpu-{index}-counters"
    counters = {
        "name": counter_set,
        "counters": {"memory-slices": {"value": "8"}, "compute-slices": {"value": "7"}},
    }

    def mig(profile: str, placement: int, memory: int, compute: int) -> Obj:
        return {
            "name": f"gpu-{index}-mig-{profile.replace('.', '-')}-{placement}",
            "attributes": {
                "type": {"string": "mig"},
                "profile": {"string": profile},
                "parentIndex": {"int": index},
                "productName": {"string": "NVIDIA H100 80GB HBM3"},
            },
            "capacity": {"memory": {"value": f"{memory * 10}Gi"}},
            "consumesCounters": [
                {
                    "counterSet": counter_set,
                    "counters": {
                        "memory-slices": {"value": str(memory)},
                        "compute-slices": {"value": str(compute)},
                    },
                }
            ],
        }

    whole = gpu(index)
    whole["consumesCounters"] = [
        {
            "counterSet": counter_set,
            "counters": {"memory-slices": {"value": "8"}, "compute-slices": {"value": "7"}},
        }
    ]
    devices = [whole, mig("3g.40gb", 0, 4, 3), mig("3g.40gb", 4, 4, 3)]
    devices += [mig("1g.10gb", p, 1, 1) for p in range(7)]
    return counters, devices


def claim(
    name: str, *requests: Obj, namespace: str = "default", constraints: list[Obj] | None = None
) -> Obj:
    devices: Obj = {"requests": list(requests)}
    if constraints:
        devices["constraints"] = constraints
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"devices": devices},
    }


def exactly(
    name: str, device_class_name: str = "gpu.nvidia.com", *selectors: str, **extra: Any
) -> Obj:
    body: Obj = {"deviceClassName": device_class_name, **extra}
    if selectors:
        body["selectors"] = [{"cel": {"expression": s}} for s in selectors]
    return {"name": name, "exactly": body}


def node(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(name: str, claims: dict[str, Obj], namespace: str = "default") -> Obj:
    """A pod whose ``claims`` map pod claim names to ``{"resourceClaimName": …}`` or
    ``{"resourceClaimTemplateName": …}``; its one container uses them all."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "resourceClaims": [{"name": k, **v} for k, v in claims.items()],
            "containers": [
                {
                    "name": "main",
                    "image": "nvcr.io/nvidia/cuda:12.4.1-base-ubi8",
                    "resources": {"claims": [{"name": k} for k in claims]},
                }
            ],
        },
    }
