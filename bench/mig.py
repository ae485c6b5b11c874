"""MIG benchmarks (DESIGN §8: plan + apply for 8 GPUs ≤ 1 s of our own time): the placement
solver over every placeable layout of every MIG model in the catalogue, the planner, and
``mig apply -c all-balanced`` on a simulated dgx-a100 with the simulator's share profiled out.
Prints one table."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.observe import observe
from gpu_operator.mig.placement import fits, solve
from gpu_operator.mig.plan import plan
from gpu_operator.mig.planner import GpuModel, Node, parse_demand, plan_cluster

MODELS = [
    "A100-SXM4-40GB",
    "A100-SXM4-80GB",
    "A30-24GB",
    "H100-SXM5-80GB",
    "H100-NVL-94GB",
    "H200-141GB",
    "GH200-96GB",
]


def all_layouts(profiles: list[GpuInstanceProfile]) -> list[list[GpuInstanceProfile]]:
    """Every non-empty multiset of GI profiles that fits one GPU."""
    out: list[list[GpuInstanceProfile]] = []

    def grow(i: int, chosen: list[GpuInstanceProfile]) -> None:
        if i == len(profiles):
            if chosen:
                out.append(chosen)
            return
        for n in range(profiles[i].instance_count + 1):
            trial = chosen + [profiles[i]] * n
            if n and not fits(profiles, trial):
                break
            grow(i + 1, trial)

    grow(0, [])
    return out


class NvmlTimer:
    """Wraps the pynvml-shaped object under the facade and adds up the time spent in its
    calls: on the simulator that is the simulator's time (on a real node, the driver's)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not (callable(value) and name.startswith(("nvml", "sim_"))):
            return value

        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def main() -> None:
    rows: list[tuple[str, str]] = []
    root = Path(tempfile.mkdtemp(prefix="bench-mig-"))
    models = {}
    for key in MODELS:
        with Nvml.open(HardwareSettings(sim=key, sim_root=root)) as nvml:
            g = nvml.gpu(0)
            models[key] = GpuModel(g.name, g.pci_device_id, tuple(nvml.gi_profiles(0)))
    for key, model in models.items():
        profiles = list(model.profiles)
        layouts = all_layouts(profiles)
        samples = []
        for layout in layouts:
            start = time.perf_counter()
            solve(profiles, layout)
            samples.append((time.perf_counter() - start) * 1e3)
        rows.append(
            (
                f"solve every layout of {key} ({len(layouts)} layouts)",
                f"total {sum(samples):.1f} ms, median {statistics.median(samples):.3f} ms, "
                f"max {max(samples):.3f} ms",
            )
        )

    nodes = [Node(f"n{i}", (models["A100-SXM4-80GB"],) * 8) for i in range(4)]
    for demand in ("1g.10gb=10,3g.40gb=2", "1g.10gb=16,2g.20gb=8,3g.40gb=8"):
        start = time.perf_counter()
        plan_cluster(parse_demand(demand), nodes, default_spec())
        took = (time.perf_counter() - start) * 1e3
        rows.append((f"planner: {demand} over 4 × 8×A100-80GB", f"{took:.1f} ms"))

    balanced = default_spec().select("all-balanced")
    with Nvml.open(HardwareSettings(sim="dgx-a100", sim_root=root)) as nvml:
        timer = NvmlTimer(nvml._nvml)
        nvml._nvml = timer  # a bench may look inside: time spent below the NVML boundary
        for label in ("first apply (modes + reset + 32 GIs)", "second apply (no change)"):
            timer.seconds = 0.0
            start = time.perf_counter()
            apply_config(nvml, balanced)
            total = time.perf_counter() - start
            rows.append(
                (
                    f"dgx-a100 all-balanced, {label}",
                    f"wall {total * 1e3:.0f} ms, in NVML (simulator) {timer.seconds * 1e3:.0f} ms, "
                    f"ours {(total - timer.seconds) * 1e3:.0f} ms",
                )
            )
        start = time.perf_counter()
        for _ in range(10):
            plan(balanced, observe(nvml))
        took = (time.perf_counter() - start) * 100
        rows.append(("dgx-a100 assert (observe + plan), unprofiled", f"{took:.1f} ms"))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  result")
    for name, result in rows:
        print(f"{name:<{width}}  {result}")


if __name__ == "__main__":
    main()
