"""DRA scheduling cost: how long the sandbox scheduler's allocator takes per ResourceClaim on
8 nodes × 8 H100 80GB GPUs published as partitionable devices (each GPU whole, plus every MIG
profile at every placement, all drawing on per-memory-slice counters: 19 devices a GPU, 1,216
in all), with CEL selectors from the DeviceClasses and the claims.

1. ``allocator``: 1,000 claims (a mix of MIG profiles and whole GPUs with memory selectors)
   allocated one after another as the scheduler does (nodes in name order, first that fits),
   the oldest claims released whenever the cluster is full, so most allocations are made on a
   busy cluster. Pure allocator, no I/O.
2. ``scheduler``: one pass of the sandbox scheduler over 400 pending pods, each with a claim
   from a template, against the API server emulator on its own thread: claims created,
   allocated, reserved, pods bound (HTTP included).

    .venv/bin/python bench/dra_scheduler.py [--claims 1000] [--pods 400]
"""

from __future__ import annotations

import os
import sys

# bench/operator.py would shadow the stdlib's ``operator`` module: keep this folder off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from gpu_operator.sandbox.apiserver import ApiServer, ServerThread  # noqa: E402
from gpu_operator.sandbox.controllers import Snapshot, schedule  # noqa: E402
from gpu_operator.sandbox.dra.allocator import (  # noqa: E402
    Allocation,
    Allocator,
    Preferences,
    Unsatisfiable,
)
from gpu_operator.sandbox.dra.classes import device_classes  # noqa: E402
from gpu_operator.sandbox.dra.inventory import Inventory  # noqa: E402
from gpu_operator.sandbox.rest import Rest  # noqa: E402

Obj = dict[str, Any]
NODES, GPUS = 8, 8
# H100 80GB MIG profiles: (name, memory slices, compute slices, placements' first slice)
PROFILES = [
    ("1g.10gb", 1, 1, range(7)),
    ("1g.20gb", 2, 1, (0, 2, 4, 6)),
    ("2g.20gb", 2, 2, (0, 2, 4)),
    ("3g.40gb", 4, 3, (0, 4)),
    ("4g.40gb", 4, 4, (0,)),
    ("7g.80gb", 8, 7, (0,)),
]
V1 = "resource.k8s.io/v1"


def _counters(slices: range, compute: int) -> Obj:
    out = {f"memory-slice-{s}": {"value": "1"} for s in slices}
    out["compute-slices"] = {"value": str(compute)}
    return out


def gpu_devices(index: int) -> tuple[Obj, list[Obj]]:
    counter_set = f"gpu-{index}"
    product: Obj = {"productName": {"string": "NVIDIA H100 80GB HBM3"}}
    whole: Obj = {
        "name": f"gpu-{index}",
        "attributes": {"type": {"string": "gpu"}, "index": {"int": index}, **product},
        "capacity": {"memory": {"value": "80Gi"}},
        "consumesCounters": [{"counterSet": counter_set, "counters": _counters(range(8), 7)}],
    }
    devices: list[Obj] = [whole]
    for profile, memory, compute, starts in PROFILES:
        for start in starts:
            devices.append(
                {
                    "name": f"gpu-{index}-mig-{profile.replace('.', '-')}-{start}",
                    "attributes": {
                        **product,
                        "type": {"string": "mig"},
                        "profile": {"string": profile},
                        "parentIndex": {"int": index},
                    },
                    "capacity": {"memory": {"value": f"{int(profile.split('.')[1][:-2])}Gi"}},
                    "consumesCounters": [
                        {
                            "counterSet": counter_set,
                            "counters": _counters(range(start, start + memory), compute),
                        }
                    ],
                }
            )
    return {"name": counter_set, "counters": _counters(range(8), 7)}, devices


def slices() -> list[Obj]:
    """Five slices a node: the counter sets in one of their own (Kubernetes 1.35 keeps
    ``sharedCounters`` and ``devices`` apart), then four of devices (a slice whose devices
    consume counters holds at most 64), two GPUs in each."""
    out = []
    per_slice = 2
    count = GPUS // per_slice + 1

    def body(name: str, node: str, content: Obj) -> Obj:
        pool = {"name": node, "generation": 1, "resourceSliceCount": count}
        return {
            "apiVersion": f"{V1}",
            "kind": "ResourceSlice",
            "metadata": {"name": name},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": node, "pool": pool, **content},
        }

    for n in range(NODES):
        node = f"gpu-node-{n + 1}"
        counters = [gpu_devices(g)[0] for g in range(GPUS)]
        out.append(body(f"{node}-gpu.nvidia.com-counters", node, {"sharedCounters": counters}))
        for part in range(GPUS // per_slice):
            devices = []
            for g in range(part * per_slice, (part + 1) * per_slice):
                devices += gpu_devices(g)[1]
            out.append(body(f"{node}-gpu.nvidia.com-{part}", node, {"devices": devices}))
    return out


def nodes() -> list[Obj]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": f"gpu-node-{n + 1}", "labels": {}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        for n in range(NODES)
    ]


def request_for(i: int) -> Obj:
    """Every 10th claim a whole GPU with ≥ 40Gi, the others MIG profiles in a fixed mix."""
    if i % 10 == 9:
        memory = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0'
        return {
            "name": "gpu",
            "exactly": {
                "deviceClassName": "gpu.nvidia.com",
                "selectors": [{"cel": {"expression": memory}}],
            },
        }
    profile = ("1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb", "1g.20gb", "1g.10gb")[i % 6]
    selector = f"device.attributes['gpu.nvidia.com'].profile == '{profile}'"
    return {
        "name": "mig",
        "exactly": {
            "deviceClassName": "mig.nvidia.com",
            "selectors": [{"cel": {"expression": selector}}],
        },
    }


def claim(i: int) -> Obj:
    return {
        "metadata": {"name": f"claim-{i}", "namespace": "default"},
        "spec": {"devices": {"requests": [request_for(i)]}},
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def bench_allocator(count: int) -> dict[str, float]:
    classes = {c["metadata"]["name"]: c for c in device_classes()}
    started = time.perf_counter()
    allocator = Allocator(Inventory.from_slices(slices()), classes, (), Preferences())
    setup = time.perf_counter() - started
    live: list[Allocation] = []
    times: list[float] = []
    released = 0
    node_objs = nodes()
    for i in range(count):
        c = claim(i)
        while True:
            t0 = time.perf_counter()
            got = None
            for node in node_objs:
                try:
                    got = allocator.allocate([c], node)
                    break
                except Unsatisfiable:
                    continue
            times.append(time.perf_counter() - t0)
            if got is not None:
                allocator.commit(got)
                live += got
                break
            oldest = live.pop(0)  # the cluster is full: the oldest claim's pod ends
            allocator.release(r.device for r in oldest.results)
            released += 1
    return {
        "setup_ms": setup * 1e3,
        "total_s": sum(times),
        "p50_ms": statistics.median(times) * 1e3,
        "p99_ms": percentile(times, 0.99) * 1e3,
        "max_ms": max(times) * 1e3,
        "attempts": len(times),
        "released": released,
    }


def bench_scheduler(pods: int) -> dict[str, float]:
    with ServerThread(ApiServer()) as thread:
        rest = Rest(thread.url)
        try:
            for node in nodes():
                rest.create("nodes", node)
            for device_class in device_classes():
                rest.create(f"{V1}/deviceclasses", device_class)
            for s in slices():
                rest.create(f"{V1}/resourceslices", s)
            one_g = "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"
            rest.create(
                f"{V1}/resourceclaimtemplates",
                {
                    "metadata": {"name": "one-g"},
                    "spec": {
                        "spec": {
                            "devices": {
                                "requests": [
                                    {
                                        "name": "mig",
                                        "exactly": {
                                            "deviceClassName": "mig.nvidia.com",
                                            "selectors": [{"cel": {"expression": one_g}}],
                                        },
                                    }
                                ]
                            }
                        }
                    },
                },
                "default",
            )
            for i in range(pods):
                rest.create(
                    "pods",
                    {
                        "metadata": {"name": f"job-{i}"},
                        "spec": {
                            "resourceClaims": [
                                {"name": "mig", "resourceClaimTemplateName": "one-g"}
                            ],
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "busybox",
                                    "resources": {"claims": [{"name": "mig"}]},
                                }
                            ],
                        },
                    },
                    "default",
                )
            t0 = time.perf_counter()
            schedule(rest, Snapshot.read(rest))
            elapsed = time.perf_counter() - t0
            bound = sum(1 for p in rest.list("pods") if p["spec"].get("nodeName"))
            allocated = sum(
                1
                for c in rest.list(f"{V1}/resourceclaims")
                if (c.get("status") or {}).get("allocation")
            )
        finally:
            rest.close()
    return {
        "pass_s": elapsed,
        "per_pod_ms": elapsed / pods * 1e3,
        "bound": bound,
        "allocated": allocated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=400)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"inventory: {NODES} nodes × {GPUS} H100 80GB, {NODES * GPUS * 19} devices")
    a = bench_allocator(args.claims)
    print(
        f"allocator, {args.claims} claims ({a['attempts']} attempts, {a['released']} releases): "
        f"total {a['total_s']:.2f} s, p50 {a['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} ms, "
        f"max {a['max_ms']:.1f} ms; inventory built in {a['setup_ms']:.1f} ms"
    )
    s = bench_scheduler(args.pods)
    print(
        f"scheduler pass, {args.pods} pods with a template claim: {s['pass_s']:.2f} s "
        f"({s['per_pod_ms']:.1f} ms a pod), {s['bound']} bound, {s['allocated']} claims allocated"
    )


if __name__ == "__main__":
    main()
