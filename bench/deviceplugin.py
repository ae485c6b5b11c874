"""Device plugin benchmark: Allocate and GetPreferredAllocation latency over real gRPC, health
event → ListAndWatch message latency, kubelet restart → re-registration, on a simulated
dgx-a100 with the kubelet stand-in. Targets (DESIGN §8): Allocate p99 ≤ 1 ms; health event to
new ListAndWatch message ≤ 100 ms; kubelet restart to re-registered ≤ 1 s.

    .venv/bin/python bench/deviceplugin.py [--calls 2000] [--rounds 3] [--restarts 10]
    .venv/bin/python bench/deviceplugin.py --real     # this machine's GPUs (no XID injection)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.deviceplugin.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
from gpu_operator.protos.grpc_api import DevicePluginStub
from gpu_operator.sandbox.kubelet import Kubelet

GPU = "nvidia.com/gpu"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, samples_s: list[float], target_ms: float) -> str:
    ms = [s * 1000 for s in samples_s]
    p50, p99, worst = percentile(ms, 50), percentile(ms, 99), max(ms)
    verdict = "ok" if p99 <= target_ms else "missed"
    return (
        f"| {name:<46} | {len(ms):>5} | {p50:>8.3f} | {p99:>8.3f} | {worst:>8.3f} | "
        f"≤ {target_ms:g} ms {verdict} |"
    )


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def start(kubelet: Kubelet, hardware: HardwareSettings, **flags: str) -> DevicePlugin:
    settings = resolve_settings({"kubelet_socket": str(kubelet.socket), **flags}, {})
    plugin = DevicePlugin(settings, hardware)
    plugin.start()
    if not kubelet.wait_until(lambda: kubelet.allocatable(GPU) == kubelet.capacity(GPU) > 0, 10):
        raise RuntimeError("the plugin did not register")
    return plugin


def bench_calls(kubelet: Kubelet, calls: int) -> list[str]:
    ids = sorted(kubelet.state(GPU).devices)
    with grpc.insecure_channel(f"unix://{kubelet.plugin_dir}/nvidia-gpu.sock") as channel:
        stub = DevicePluginStub(channel)
        one = pb.AllocateRequest(
            container_requests=[pb.ContainerAllocateRequest(devices_ids=ids[:1])]
        )
        every = pb.AllocateRequest(
            container_requests=[pb.ContainerAllocateRequest(devices_ids=ids)]
        )

        def preferred(size: int) -> pb.PreferredAllocationRequest:
            return pb.PreferredAllocationRequest(
                container_requests=[
                    pb.ContainerPreferredAllocationRequest(
                        available_deviceIDs=ids, allocation_size=size
                    )
                ]
            )

        timed(lambda: stub.Allocate(one, timeout=5), 200)  # warm up
        rows = [row("Allocate, 1 GPU", timed(lambda: stub.Allocate(one, timeout=5), calls), 1)]
        if len(ids) > 1:
            rows.append(
                row(
                    f"Allocate, {len(ids)} GPUs",
                    timed(lambda: stub.Allocate(every, timeout=5), calls),
                    1,
                )
            )
        for size in (2, 3):
            if size < len(ids):
                rows.append(
                    row(
                        f"GetPreferredAllocation, {size} of {len(ids)}",
                        timed(
                            lambda n=size: stub.GetPreferredAllocation(preferred(n), timeout=5),
                            calls // 4,
                        ),
                        5,
                    )
                )
        return rows


def bench_health(kubelet: Kubelet, hardware: HardwareSettings, rounds: int) -> list[float]:
    store = StateStore(hardware.state_path())
    samples = []
    for _ in range(rounds):
        plugin = start(kubelet, hardware)
        for gpu in range(kubelet.capacity(GPU)):
            state = kubelet.state(GPU)
            seen = len(state.messages)
            injected = time.monotonic()
            faults.inject_xid(store, gpu, 48)
            if not kubelet.wait_until(lambda s=state, n=seen: len(s.messages) > n, 5):
                raise RuntimeError("no ListAndWatch message after an XID")
            samples.append(state.messages[seen][0] - injected)
        plugin.stop()
    return samples


def bench_restart(kubelet: Kubelet, hardware: HardwareSettings, restarts: int) -> list[float]:
    plugin = start(kubelet, hardware)
    samples = []
    for _ in range(restarts):
        state = kubelet.state(GPU)
        seen = len(state.messages)
        kubelet.restart()
        begun = time.monotonic()
        # Re-registered and usable: the new stream's first full list has arrived.
        if not kubelet.wait_until(
            lambda s=state, n=seen: len(s.messages) > n and s.allocatable == s.capacity, 5
        ):
            raise RuntimeError(
                f"the plugin did not register again: {len(kubelet.manager.registrations)} "
                f"registrations, allocatable {kubelet.allocatable(GPU)}"
            )
        samples.append(time.monotonic() - begun)
    plugin.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--sim", default="dgx-a100", help="simulated node preset")
    parser.add_argument("--real", action="store_true", help="this machine's real GPUs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dp-bench-", dir="/tmp") as tmp:
        root = Path(tmp)
        os.environ["GPU_OPERATOR_SIM_ROOT"] = str(root / "sim")
        hardware = HardwareSettings(sim=None if args.real else args.sim, sim_root=root / "sim")
        with Nvml.open(hardware) as nvml:
            node = f"{len(nvml.gpus())} × {nvml.gpu(0).name}" + ("" if args.real else " (sim)")
        kubelet = Kubelet(root / "device-plugins", root / "pod-resources")
        kubelet.start()
        try:
            plugin = start(kubelet, hardware)
            rows = bench_calls(kubelet, args.calls)
            plugin.stop()
            health = [] if args.real else bench_health(kubelet, hardware, args.rounds)
            restart = bench_restart(kubelet, hardware, args.restarts)
        finally:
            kubelet.stop()
    print(f"device plugin on {node}, {os.cpu_count()} CPU(s), over unix-socket gRPC")
    print()
    print(
        f"| {'measure':<46} | {'n':>5} | {'p50 ms':>8} | {'p99 ms':>8} | {'max ms':>8} | target |"
    )
    print(f"|{'-' * 48}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 16}|")
    for line in rows:
        print(line)
    if health:
        print(row("XID event → ListAndWatch message", health, 100))
    print(row("kubelet restart → re-registered, allocatable", restart, 1000))
    if health:
        print()
        print(f"mean XID → message {statistics.mean(health) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
