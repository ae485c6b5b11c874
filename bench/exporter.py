"""Exporter costs: scrape latency and size, sampler pass time, memory after many scrapes.

Scenarios: simulated dgx-a100 with MIG off, all-balanced (32 instances) and all-1g.5gb (56
instances: DESIGN's "8 GPUs x 7 MIG instances" target), and the real GPU when a driver is
loaded (plus `nvidia-smi --query-gpu` per scrape, the usual shell alternative). Prints a table.
"""

from __future__ import annotations

import http.client
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gpu_operator.errors import NoDriverError
from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
from gpu_operator.exporter.serving import Exporter, ExporterService
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.gpu import HardwareSettings, Nvml

Layout = list[tuple[str, int]]
BALANCED: Layout = [("3g.20gb", 4), ("2g.10gb", 2), ("1g.5gb", 0), ("1g.5gb", 1)]
ALL_1G: Layout = [("1g.5gb", s) for s in range(7)]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


def partition(nvml: Nvml, layout: Layout) -> None:
    gpus = list(range(nvml.device_count()))
    for index in gpus:
        nvml.set_mig_mode(index, True)
    nvml.reset_gpus(gpus)
    for index in gpus:
        ids = {p.name: p.id for p in nvml.gi_profiles(index)}
        for name, start in layout:
            gi = nvml.create_gpu_instance(index, ids[name], start)
            nvml.create_compute_instance(index, gi.id)


def scrape_latency(port: int, count: int) -> tuple[list[float], int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    samples, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/metrics")
        body = connection.getresponse().read()
        samples.append((time.perf_counter() - started) * 1e3)
        size = len(body)
    connection.close()
    return samples, size


def timed(fn: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def run(label: str, nvml: Nvml, scrapes: int, rows: list[tuple[str, ...]]) -> None:
    settings = ExporterSettings(
        address="127.0.0.1:0", hostname="bench", collect_interval_ms=3_600_000
    )
    exporter = Exporter(nvml, settings, read_collectors(DEFAULT_COLLECTORS))
    passes = timed(exporter.step, 20)
    service = ExporterService(exporter, nvml)
    service.start()
    try:
        latencies, size = scrape_latency(service.port, scrapes)
    finally:
        service.stop()
    series = sum(1 for line in exporter.body.splitlines() if line and not line.startswith(b"#"))
    p50, p99 = percentiles(latencies)
    s50, s99 = percentiles(passes)
    rows.append(
        (label, f"{series}", f"{size}", f"{p50:.3f}", f"{p99:.3f}", f"{s50:.2f}", f"{s99:.2f}")
    )


def main() -> None:
    scrapes = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rows: list[tuple[str, ...]] = []
    try:
        with Nvml.open(HardwareSettings(sim=None)) as real:
            name = real.gpu(0).name
            run(f"real {name} x{real.device_count()}", real, scrapes, rows)
            if shutil.which("nvidia-smi"):
                query = [
                    "nvidia-smi",
                    "--query-gpu=temperature.gpu,power.draw,clocks.sm,utilization.gpu,memory.used",
                    "--format=csv,noheader",
                ]
                smi = timed(lambda: subprocess.run(query, capture_output=True, check=True), 20)
                p50, p99 = percentiles(smi)
                rows.append(
                    ("nvidia-smi --query-gpu", "-", "-", f"{p50:.3f}", f"{p99:.3f}", "-", "-")
                )
    except NoDriverError:
        print("no NVIDIA driver: real GPU skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory() as root:
        for label, layout in (
            ("dgx-a100 MIG off", None),
            ("dgx-a100 all-balanced", BALANCED),
            ("dgx-a100 all-1g.5gb", ALL_1G),
        ):
            sim_root = Path(root) / label.replace(" ", "_")
            with Nvml.open(HardwareSettings(sim="dgx-a100", sim_root=sim_root)) as nvml:
                if layout:
                    partition(nvml, layout)
                run(f"sim {label}", nvml, scrapes, rows)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    header = (
        "scenario",
        "series",
        "bytes",
        "scrape p50 ms",
        "scrape p99 ms",
        "pass p50 ms",
        "pass p99 ms",
    )
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(row))
    print(f"max RSS after {scrapes} scrapes per scenario: {rss_mib:.1f} MiB")


if __name__ == "__main__":
    main()
