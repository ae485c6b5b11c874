"""What the NVML facade costs per call, on the real NVML (when a driver is loaded) and on the
simulator: the numbers behind docs/performance.md. Prints one table; read only on real GPUs."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gpu_operator.errors import NoDriverError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake.faults import reset_gpu
from gpu_operator.gpu.fake.state import StateStore


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def bench(label: str, nvml: Nvml, repeat: int) -> list[tuple[str, str, float, float]]:
    rows = []
    cases: list[tuple[str, Callable[[], object]]] = [
        ("telemetry(0) without energy", lambda: nvml.telemetry(0, with_energy=False)),
        ("telemetry(0) with energy", lambda: nvml.telemetry(0, with_energy=True)),
        ("gpu(0) (static facts)", lambda: nvml.gpu(0)),
        ("gi_profiles(0) uncached", lambda: (nvml._gi_profiles.clear(), nvml.gi_profiles(0))),
        ("mig_devices(0)", lambda: nvml.mig_devices(0)),
        ("topology(0, last)", lambda: nvml.topology(0, nvml.device_count() - 1)),
    ]
    for name, fn in cases:
        median, p99 = timed(fn, repeat)
        rows.append((label, name, median, p99))
    return rows


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rows = []
    try:
        with Nvml.open(HardwareSettings(sim=None)) as real:
            rows += bench(f"real {real.gpu(0).name}", real, repeat)
    except NoDriverError:
        print("no NVIDIA driver: real NVML skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory() as root:
        for spec in ("h200", "dgx-a100"):
            with Nvml.open(HardwareSettings(sim=spec, sim_root=Path(root))) as sim:
                if spec == "dgx-a100":
                    sim.set_mig_mode(0, True)
                    # Ampere applies a MIG mode change at the next GPU reset (nvidia-smi -r).
                    reset_gpu(
                        StateStore(HardwareSettings(sim=spec, sim_root=Path(root)).state_path()), 0
                    )
                    for profile_id, start in ((9, 4), (14, 2), (19, 0), (19, 1)):
                        gi = sim.create_gpu_instance(0, profile_id, start)
                        sim.create_compute_instance(0, gi.id)
                rows += bench(f"sim {spec}", sim, repeat)
    print(f"{'backend':<22} {'call':<30} {'median ms':>10} {'p99 ms':>10}")
    for label, name, median, p99 in rows:
        print(f"{label:<22} {name:<30} {median:>10.3f} {p99:>10.3f}")


if __name__ == "__main__":
    main()
