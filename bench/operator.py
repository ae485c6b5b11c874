"""The operator at scale on the API server emulator: for 100, 1,000 and 5,000 Rocky 8.5 A100
nodes, the CPU time, wall time, API requests and writes of (1) the initial list of everything,
(2) the first pass (labels every node, creates every operand), (3) the pass after the
DaemonSets report ready (status → ready), (4) a steady-state pass — and the operator's RSS.
The emulator runs as ``gpu-operator sandbox apiserver`` in its own process; the operator runs in
a child process of its own, so RSS is the operator's alone.

    .venv/bin/python bench/operator.py [--nodes 100,1000,5000]
"""

from __future__ import annotations

import os
import sys

# This file is bench/operator.py: keep its folder off sys.path so it never shadows the stdlib's
# ``operator`` module (asyncio, enum and collections import it).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).parents[1]
GPU_OPERATOR = str(ROOT / ".venv" / "bin" / "gpu-operator")
NS = "gpu-operator"


def node(n: int) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": f"gpu-{n:05d}",
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "rocky",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "8.5",
        "feature.node.kubernetes.io/kernel-version.full": "4.18.0-348.el8.0.2.x86_64",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"gpu-{n:05d}", "labels": labels},
    }


async def populate(url: str, count: int) -> None:
    from gpu_operator.operator.crd import build_crd

    policy = yaml.safe_load(
        (ROOT / "tests" / "data" / "operator" / "seed" / "policy.yaml").read_text()
    )
    policy["metadata"] = {"name": "cluster-policy"}
    async with aiohttp.ClientSession() as http:

        async def post(path: str, body: dict[str, Any]) -> None:
            async with http.post(url + path, json=body) as response:
                assert response.status in (200, 201), await response.text()

        await post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", build_crd())
        await post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        )
        queue = list(range(count))

        async def worker() -> None:
            while queue:
                await post("/api/v1/nodes", node(queue.pop()))

        await asyncio.gather(*(worker() for _ in range(32)))
        await post("/apis/nvidia.com/v1/clusterpolicies", policy)


async def child(url: str) -> dict[str, Any]:
    """The operator's side: runs in its own process; prints one JSON line."""
    from lightkube.resources.apps_v1 import DaemonSet
    from lightkube.types import PatchType

    from gpu_operator.kube import KubeSettings, build_async_client
    from gpu_operator.operator.controller import Controller, ControllerSettings

    client = build_async_client(KubeSettings(server=url, timeout_s=120))
    requests = [0]

    async def count(_: Any) -> None:
        requests[0] += 1

    client._client._client.event_hooks["request"].append(count)  # type: ignore[attr-defined]
    controller = Controller(client, ControllerSettings(namespace=NS))
    results: dict[str, Any] = {}

    async def measure(label: str, step: Any) -> None:
        cpu, wall, before, writes = (
            time.process_time(),
            time.perf_counter(),
            requests[0],
            controller.metrics.api_writes_total,
        )
        await step()
        results[label] = {
            "cpu_s": round(time.process_time() - cpu, 3),
            "wall_s": round(time.perf_counter() - wall, 3),
            "requests": requests[0] - before,
            "writes": controller.metrics.api_writes_total - writes,
        }

    await measure("sync", controller.sync)
    await measure("first pass", controller.reconcile_once)
    async for ds in client.list(DaemonSet, namespace=NS):
        status = {
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "numberAvailable": 1,
            "updatedNumberScheduled": 1,
            "observedGeneration": ds.metadata.generation,
        }
        await client.patch(
            DaemonSet.Status,
            ds.metadata.name,
            {"status": status},
            namespace=NS,
            patch_type=PatchType.MERGE,
        )
    await controller.sync()
    await measure("ready pass", controller.reconcile_once)
    await measure("steady pass", controller.reconcile_once)
    results["state"] = controller.last_plan.ready if controller.last_plan else None
    results["rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    await client.close()
    return results


def run_size(count: int) -> dict[str, Any]:
    server = subprocess.Popen(
        [
            GPU_OPERATOR,
            "sandbox",
            "apiserver",
            "--port",
            "0",
            "--kubeconfig",
            "/tmp/bench-operator-kubeconfig.yaml",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.split("listening on ", 1)[1].split()[0]
        asyncio.run(populate(url, count))
        out = subprocess.run(
            [sys.executable, __file__, "--child", url],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", default="100,1000,5000")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child))))
        return
    print(f"{'nodes':>6} {'step':<12} {'cpu s':>7} {'wall s':>7} {'requests':>9} {'writes':>7}")
    for count in (int(n) for n in args.nodes.split(",")):
        result = run_size(count)
        for step in ("sync", "first pass", "ready pass", "steady pass"):
            r = result[step]
            cells = f"{r['cpu_s']:>7.3f} {r['wall_s']:>7.3f} {r['requests']:>9} {r['writes']:>7}"
            print(f"{count:>6} {step:<12} {cells}")
        ready = result["state"]
        print(f"{count:>6} operator RSS {result['rss_mib']} MiB; ClusterPolicy ready: {ready}")


if __name__ == "__main__":
    main()
