"""DRA driver benchmark: claim → prepared (``NodePrepareResources`` over the DRA socket, as the
kubelet calls it: read the claim, write its CDI spec with the toolkit's generator, checkpoint
with fsync), unprepare, and the node's ResourceSlice build, on a simulated node with an
in-process claim source (no API round trip in the numbers).

    .venv/bin/python bench/dra_prepare.py [--preset hgx-h100] [--claims 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.dra.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos.grpc_api import DRAPluginStub

NODE = "bench-node"


class Claims:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))


class Slices:
    def publish(self, desired: dict[str, Any]) -> bool:
        return False

    def delete_node_slices(self, node: str) -> int:
        return 0


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, samples_s: list[float]) -> str:
    ms = [s * 1000 for s in samples_s]
    return (
        f"{name:<34} n={len(ms):<5} p50={percentile(ms, 50):7.3f} ms  "
        f"p99={percentile(ms, 99):7.3f} ms  mean={statistics.fmean(ms):7.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="hgx-h100")
    parser.add_argument("--claims", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drab-", dir="/tmp") as tmp:
        base = Path(tmp)
        version = "580.159.04"
        lib = base / "driver/usr/lib/x86_64-linux-gnu"
        lib.mkdir(parents=True)
        for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
            (lib / f"{name}.so.{version}").write_bytes(b"")
        os.environ["GPU_OPERATOR_SIM_ROOT"] = str(base / "sim")
        settings = resolve_settings(
            {},
            {
                "NODE_NAME": NODE,
                "CDI_ROOT": str(base / "cdi"),
                "DRIVER_ROOT_CTR_PATH": str(base / "driver"),
                "KUBELET_REGISTRAR_DIRECTORY_PATH": str(base / "reg"),
                "KUBELET_PLUGINS_DIRECTORY_PATH": str(base / "plugins"),
            },
        )
        claims = Claims()
        driver = DraDriver(
            settings,
            HardwareSettings(sim=args.preset, sim_root=base / "sim"),
            publisher=Slices(),
            claims=claims,
        )
        driver.start()
        assert driver.node is not None
        devices = sorted(driver.node.by_name())
        try:
            prepare: list[float] = []
            again: list[float] = []
            unprepare: list[float] = []
            build: list[float] = []
            with grpc.insecure_channel(f"unix://{settings.plugin_dir / 'dra.sock'}") as channel:
                stub = DRAPluginStub(channel)
                for i in range(args.claims):
                    uid = f"uid-{i:05d}"
                    claims.objects[("bench", f"c{i}")] = {
                        "metadata": {"name": f"c{i}", "namespace": "bench", "uid": uid},
                        "status": {
                            "allocation": {
                                "devices": {
                                    "results": [
                                        {
                                            "request": "gpu",
                                            "driver": "gpu.nvidia.com",
                                            "pool": NODE,
                                            "device": devices[i % len(devices)],
                                        }
                                    ]
                                }
                            }
                        },
                    }
                    ref = dra.Claim(namespace="bench", name=f"c{i}", uid=uid)
                    for bucket in (prepare, again):
                        t0 = time.perf_counter()
                        answer = stub.NodePrepareResources(
                            dra.NodePrepareResourcesRequest(claims=[ref]), timeout=10
                        )
                        bucket.append(time.perf_counter() - t0)
                        assert not answer.claims[uid].error, answer.claims[uid].error
                    t0 = time.perf_counter()
                    stub.NodeUnprepareResources(
                        dra.NodeUnprepareResourcesRequest(claims=[ref]), timeout=10
                    )
                    unprepare.append(time.perf_counter() - t0)
            for _ in range(200):
                t0 = time.perf_counter()
                driver.desired_slice()
                build.append(time.perf_counter() - t0)
        finally:
            driver.stop(clean=False)
    print(f"DRA driver on a simulated {args.preset} ({len(devices)} GPUs)")
    print(row("NodePrepareResources (new claim)", prepare))
    print(row("NodePrepareResources (prepared)", again))
    print(row("NodeUnprepareResources", unprepare))
    print(row(f"ResourceSlice build ({len(devices)} GPUs)", build))


if __name__ == "__main__":
    main()
