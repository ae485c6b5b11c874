"""API server emulator throughput: creates/s, listing 5,000 nodes, watch fan-out to 10 watchers,
and the emulator's memory holding them. The emulator runs as ``gpu-operator sandbox apiserver``
in its own process, as in the sandbox; clients speak plain HTTP (aiohttp).

    .venv/bin/python bench/apiserver.py [--nodes 5000] [--watchers 10] [--events 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from gpu_operator.names import GPU_PRESENT_LABEL


def node(n: int) -> dict[str, Any]:
    labels = {f"nvidia.com/gpu.{k}": "x" for k in ("product", "memory", "family", "count")}
    labels.update({"kubernetes.io/hostname": f"gpu-node-{n:05d}", GPU_PRESENT_LABEL: "true"})
    capacity = {"cpu": "128", "memory": "2Ti", "nvidia.com/gpu": "8", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"gpu-node-{n:05d}", "labels": labels},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Ubuntu 24.04"},
        },
    }


async def create_all(
    session: aiohttp.ClientSession, url: str, bodies: list[dict[str, Any]], concurrency: int
) -> float:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"create failed: {response.status} {await response.text()}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def watcher(
    session: aiohttp.ClientSession, url: str, expected: int, ready: asyncio.Event, done: list[float]
) -> None:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        ready.set()
        seen = 0
        async for _line in response.content:
            seen += 1
            if seen == expected:
                done.append(time.perf_counter())
                return


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace, base: str, pid: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        rss_empty = rss_mib(pid)
        took = await create_all(
            session, base + "/api/v1/nodes", [node(n) for n in range(args.nodes)], args.concurrency
        )
        rows.append(
            (
                f"create {args.nodes} nodes (concurrency {args.concurrency})",
                f"{args.nodes / took:,.0f} objects/s",
            )
        )
        times, size = [], 0
        for _ in range(5):
            start = time.perf_counter()
            async with session.get(base + "/api/v1/nodes") as response:
                body = await response.read()
            times.append(time.perf_counter() - start)
            size = len(body)
        assert len(json.loads(body)["items"]) == args.nodes
        rows.append(
            (
                f"list {args.nodes} nodes ({size / 2**20:.1f} MiB)",
                f"{statistics.median(times) * 1000:,.0f} ms median of 5",
            )
        )
        start = time.perf_counter()
        async with session.get(
            base + f"/api/v1/nodes?labelSelector={GPU_PRESENT_LABEL}%3Dtrue&limit=500"
        ) as response:
            await response.read()
        rows.append(
            (
                "list 500 nodes by label (one page)",
                f"{(time.perf_counter() - start) * 1000:,.0f} ms",
            )
        )
        rows.append(
            (
                f"emulator RSS: empty -> {args.nodes} nodes",
                f"{rss_empty:.0f} -> {rss_mib(pid):.0f} MiB",
            )
        )

        async with session.get(base + "/api/v1/namespaces/default/configmaps") as response:
            rv = (await response.json())["metadata"]["resourceVersion"]
        done: list[float] = []
        readies = [asyncio.Event() for _ in range(args.watchers)]
        url = base + f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
        tasks = [asyncio.create_task(watcher(session, url, args.events, r, done)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))
        await asyncio.sleep(0.2)
        bodies = [{"metadata": {"name": f"cm-{n}"}, "data": {"k": "v"}} for n in range(args.events)]
        start = time.perf_counter()
        await create_all(
            session, base + "/api/v1/namespaces/default/configmaps", bodies, args.concurrency
        )
        created = time.perf_counter() - start
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        delivered = max(done) - start
        rows.append(
            (
                f"watch fan-out: {args.events} creates -> {args.watchers} watchers",
                f"{args.events * args.watchers / delivered:,.0f} events/s delivered "
                f"(creates took {created:.2f} s, last watcher done at {delivered:.2f} s)",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from gpu_operator.cli import main; main()",
                "sandbox",
                "apiserver",
                "--port",
                "0",
                "--kubeconfig",
                f"{tmp}/kubeconfig",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            base = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            rows = asyncio.run(run(args, base, proc.pid))
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    width = max(len(r[0]) for r in rows)
    print(f"{'API server emulator':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
