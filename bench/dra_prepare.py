"""DRA driver benchmark: claim → prepared (``NodePrepareResources`` over the DRA socket, as the
kubelet calls it: read the claim, write its CDI spec with the toolkit's generator, checkpoint
with fsync), unprepare, and the node's ResourceSlice build, on a simulated node with an
in-process claim source (no API round trip in the numbers).

With ``--mig`` every GPU has MIG mode on and the driver runs with ``DynamicMIG``: each claim is
one ``3g.40gb`` device (GPU ``i % 8``, slice 4), so a prepare creates its GPU and compute
instance through NVML (the simulator's) and an unprepare destroys them; the pool build is every
GPU with every MIG profile (26 devices a GPU, counter sets apart), and the publish cost is the
build plus ``publish_pool`` writing it to the API server emulator over HTTP (lightkube), a new
generation each time (``--publishes``).

    .venv/bin/python bench/dra_prepare.py [--preset hgx-h100] [--claims 500] [--mig]
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
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import grpc  # noqa: E402

from gpu_operator.dra.plugin import DraDriver  # noqa: E402
from gpu_operator.dra.settings import resolve_settings  # noqa: E402
from gpu_operator.dra.slices import build_pool  # noqa: E402
from gpu_operator.gpu import HardwareSettings, Nvml  # noqa: E402
from gpu_operator.protos import dra_v1_pb2 as dra  # noqa: E402
from gpu_operator.protos.grpc_api import DRAPluginStub  # noqa: E402

NODE = "bench-node"


class Claims:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))


class Slices:
    def publish_pool(self, node: str, desired: list[dict[str, Any]]) -> bool:
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
    parser.add_argument("--mig", action="store_true", help="dynamic MIG: 3g.40gb claims")
    parser.add_argument("--publishes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drab-", dir="/tmp") as tmp:
        base = Path(tmp)
        version = "580.159.04"
        lib = base / "driver/usr/lib/x86_64-linux-gnu"
        lib.mkdir(parents=True)
        for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
            (lib / f"{name}.so.{version}").write_bytes(b"")
        os.environ["GPU_OPERATOR_SIM_ROOT"] = str(base / "sim")
        hardware = HardwareSettings(sim=args.preset, sim_root=base / "sim")
        if args.mig:
            with Nvml.open(hardware) as nvml:
                for index in range(nvml.device_count()):
                    nvml.set_mig_mode(index, True)
        settings = resolve_settings(
            {},
            {
                "NODE_NAME": NODE,
                "CDI_ROOT": str(base / "cdi"),
                "DRIVER_ROOT_CTR_PATH": str(base / "driver"),
                "KUBELET_REGISTRAR_DIRECTORY_PATH": str(base / "reg"),
                "KUBELET_PLUGINS_DIRECTORY_PATH": str(base / "plugins"),
                **({"FEATURE_GATES": "DynamicMIG=true"} if args.mig else {}),
            },
        )
        claims = Claims()
        driver = DraDriver(
            settings,
            hardware,
            publisher=Slices(),
            claims=claims,
        )
        driver.start()
        assert driver.node is not None
        devices = sorted(driver.node.by_name())
        if args.mig:
            devices = [f"{d}-mig-3g40gb-9-4" for d in devices]
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
                driver.desired_slices()
                build.append(time.perf_counter() - t0)
            publish = publish_cost(driver, args.publishes, base) if args.mig else []
            pool = driver.desired_slices()
        finally:
            driver.stop(clean=False)
    mode = "dynamic MIG, 3g.40gb claims" if args.mig else "full GPUs"
    print(f"DRA driver on a simulated {args.preset} ({len(devices)} GPUs, {mode})")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(row("NodePrepareResources (new claim)", prepare))
    print(row("NodePrepareResources (prepared)", again))
    print(row("NodeUnprepareResources", unprepare))
    count = sum(len(s["spec"].get("devices") or []) for s in pool)
    print(row(f"pool build ({len(pool)} slices, {count} devices)", build))
    if publish:
        print(row("pool build + publish to the emulator", publish))


def publish_cost(driver: DraDriver, runs: int, base: Path) -> list[float]:
    """Build the pool and write it whole to the API server emulator, each time at a new
    generation (a changed taint makes every run a real write)."""
    from gpu_operator.dra.kubeapi import SlicePublisher
    from gpu_operator.dra.slices import Taint
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
    from gpu_operator.sandbox.apiserver.kubeconfig import write_kubeconfig

    out = []
    with ServerThread(ApiServer()) as thread:
        config = write_kubeconfig(base / "kubeconfig", thread.url)
        client = build_client(KubeSettings(kubeconfig=config))
        publisher = SlicePublisher(client)
        assert driver.health is not None
        try:
            for i in range(runs + 1):
                t0 = time.perf_counter()
                taint = {"gpu-0": [Taint("gpu.nvidia.com/xid", str(40 + i))]}
                slices = build_pool(NODE, driver.groups(), taint, 1)
                assert publisher.publish_pool(NODE, slices)
                if i:  # the first run creates the slices
                    out.append(time.perf_counter() - t0)
        finally:
            client.close()
    return out


if __name__ == "__main__":
    main()
