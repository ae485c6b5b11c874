"""What each agent costs to start and to keep: ``--help`` wall and CPU time of every agent and
upstream-named executable, and for the exporter, device plugin and feature discovery running as
their own processes, resident memory (VmRSS once ready and after the scrapes; VmHWM, the peak)
and, for the exporter, the time from spawn to its first series and the scrape latency of the
real process over one kept-alive connection.

    python bench/footprint.py                  # simulated h200 (GPU_OPERATOR_SIM)
    python bench/footprint.py --real           # this machine's GPUs
    python bench/footprint.py --help-runs 20 --scrapes 5000
    python bench/footprint.py --real --exporter-only --starts 5

Runs the installed console scripts (``gpu-operator``, ``dcgm-exporter``, ...) found on PATH, as
a node runs them. Each exporter case is started once unmeasured (so the bytecode caches exist,
as in an image whose install compiled them), then ``--starts`` times measured; the medians are
printed. Prints markdown tables for docs/performance.md.
"""

from __future__ import annotations

import os
import sys

# bench/operator.py would shadow the stdlib's ``operator``: keep this folder off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import http.client  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HELP_CASES = [
    ["gpu-operator", "--help"],
    ["gpu-operator", "exporter", "--help"],
    ["gpu-operator", "device-plugin", "--help"],
    ["gpu-operator", "feature-discovery", "--help"],
    ["gpu-operator", "validator", "--help"],
    ["gpu-operator", "toolkit", "--help"],
    ["gpu-operator", "mig-manager", "--help"],
    ["gpu-operator", "wait-for", "--help"],
    ["dcgm-exporter", "--help"],
    ["nvidia-device-plugin", "--help"],
    ["gpu-feature-discovery", "--help"],
    ["nvidia-validator", "--help"],
    ["nvidia-toolkit", "--help"],
    ["nvidia-mig-manager", "--help"],
    ["nvidia-mig-parted", "--help"],
]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        sys.exit(f"footprint: {name} is not installed (pip install the project first)")
    return found


def help_times(runs: int, env: dict[str, str]) -> list[tuple[str, float, float, float]]:
    """Per command: min and median wall seconds, median CPU seconds (user + sys)."""
    rows = []
    for case in HELP_CASES:
        walls, cpus = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(
                [binary(case[0]), *case[1:]], env=env, check=True, stdout=subprocess.DEVNULL
            )
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        rows.append((" ".join(case), min(walls), statistics.median(walls), statistics.median(cpus)))
    return rows


def memory(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of ``pid``, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def first_series(connection: http.client.HTTPConnection) -> bytes | None:
    try:
        connection.request("GET", "/metrics")
        body = connection.getresponse().read()
    except OSError:
        connection.close()
        return None
    return body if any(line[:1] not in (b"#", b"") for line in body.splitlines()) else None


def exporter_once(
    command: list[str], env: dict[str, str], scrapes: int
) -> tuple[float, float, float, float, list[float], int]:
    """One start: (first series s, RSS ready, RSS after scrapes, HWM, scrape ms, series)."""
    port = free_port()
    command = [*command, "-a", f"127.0.0.1:{port}"]
    started = time.perf_counter()
    with spawned(command, env) as process:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = None
        while body is None:
            if process.poll() is not None:
                sys.exit(f"footprint: the exporter exited with {process.returncode}")
            body = first_series(connection)
            if body is None:
                time.sleep(0.002)
        ready_s = time.perf_counter() - started
        rss_ready, _ = memory(process.pid)
        latencies = []
        for _ in range(scrapes):
            t0 = time.perf_counter()
            connection.request("GET", "/metrics")
            connection.getresponse().read()
            latencies.append((time.perf_counter() - t0) * 1e3)
        connection.close()
        rss, hwm = memory(process.pid)
    series = sum(1 for line in body.splitlines() if line[:1] not in (b"#", b""))
    return ready_s, rss_ready, rss, hwm, latencies, series


def exporter(
    label: str,
    command: list[str],
    env: dict[str, str],
    scrapes: int,
    starts: int,
    warm_up: bool = True,
) -> tuple[str, float, float, float, float, float, float, float, float, int]:
    """``starts`` starts of ``command`` after one unmeasured start (which writes the bytecode
    caches, as an image's install does; not with ``warm_up=False``): (label, first series s
    median, min, max, RSS ready, RSS after scrapes, HWM (medians), scrape p50 ms, p99 ms (all
    starts' scrapes), series)."""
    if warm_up:
        exporter_once(command, env, 1)
    runs = [exporter_once(command, env, scrapes) for _ in range(starts)]
    firsts = [r[0] for r in runs]
    latencies = [ms for r in runs for ms in r[4]]
    return (
        label,
        statistics.median(firsts),
        min(firsts),
        max(firsts),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        statistics.median(r[3] for r in runs),
        percentile(latencies, 50),
        percentile(latencies, 99),
        runs[-1][5],
    )


PHASES = """
import time
t0 = time.time()
import os, sys
def mark(step, out=[]):
    rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
    out.append((step, time.time(), int(rss) / 1024))
    return out
mark("interpreter up (site done)")
from gpu_operator.exporter import flags, process
from gpu_operator.gpu.backend import HardwareSettings
hardware = HardwareSettings.from_env()
settings = process.settings_from(flags.parse(["-a", "127.0.0.1:0"], os.environ), os.environ)
mark("flags parsed")
from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
from gpu_operator.exporter.serving import Exporter, ExporterService
from gpu_operator.gpu import Nvml
mark("exporter modules imported")
if not hardware.simulated:
    import pynvml
mark("pynvml imported")
table = read_collectors(DEFAULT_COLLECTORS)
nvml = Nvml.open(hardware)
mark("NVML open (nvmlInit, inventory)")
exporter = Exporter(nvml, settings, table)
service = ExporterService(exporter, nvml)
mark("exporter built, port bound")
exporter.step()
marks = mark("first pass rendered")
service.server.close()
nvml.close()
print(repr(marks))
"""


def phases(env: dict[str, str], runs: int) -> list[tuple[str, float, float]]:
    """Where an exporter start goes, in a process like the exporter's (same imports, same
    calls, no HTTP client): per step the median wall seconds since spawn and RSS MiB."""
    subprocess.run([sys.executable, "-c", PHASES], env=env, check=True, capture_output=True)
    samples: list[list[tuple[str, float, float]]] = []
    for _ in range(runs):
        started = time.time()
        out = subprocess.run(
            [sys.executable, "-c", PHASES], env=env, check=True, capture_output=True, text=True
        ).stdout
        marks = eval(out.strip().splitlines()[-1])  # our own child's repr
        samples.append([(step, at - started, rss) for step, at, rss in marks])
    return [
        (
            run[0][0],
            statistics.median(s[i][1] for s in samples),
            statistics.median(s[i][2] for s in samples),
        )
        for i, run in enumerate(zip(*samples, strict=True))
    ]


@contextmanager
def kubelet_stand_in(root: Path) -> Iterator[Any]:
    """The sandbox's kubelet: device-plugin registration and PodResources over unix sockets."""
    from gpu_operator.sandbox.kubelet import Kubelet

    kubelet = Kubelet(root / "device-plugins", root / "pod-resources", dial_timeout_s=2)
    kubelet.start()
    try:
        yield kubelet
    finally:
        kubelet.stop()


def device_plugin(env: dict[str, str], kubelet: Any) -> tuple[float, float, float]:
    """Seconds to registered with the kubelet stand-in, RSS and HWM (MiB) 1 s later."""
    started = time.perf_counter()
    with spawned(
        [binary("nvidia-device-plugin")], {**env, "KUBELET_SOCKET": str(kubelet.socket)}
    ) as process:
        if not kubelet.wait_until(lambda: bool(kubelet.manager.registrations), 30):
            sys.exit("footprint: the device plugin did not register in 30 s")
        ready = time.perf_counter() - started
        time.sleep(1)
        rss, hwm = memory(process.pid)
    return ready, rss, hwm


def feature_discovery(env: dict[str, str], root: Path) -> tuple[float, float, float]:
    """Seconds to the first labels file, RSS and HWM (MiB) 1 s later (then sleeping)."""
    output = root / "gfd"
    started = time.perf_counter()
    with spawned(
        [binary("gpu-feature-discovery"), "--output-file", str(output), "--sleep-interval", "1h"],
        {**env, "NODE_NAME": "bench", "GFD_MACHINE_TYPE_FILE": str(root / "machine-type")},
    ) as process:
        while not output.exists():
            if process.poll() is not None:
                sys.exit(f"footprint: feature discovery exited with {process.returncode}")
            time.sleep(0.005)
        ready = time.perf_counter() - started
        time.sleep(1)
        rss, hwm = memory(process.pid)
    return ready, rss, hwm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="this machine's GPUs, not the sim")
    parser.add_argument("--sim", default="h200", help="simulated node (default h200)")
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--skip-help", action="store_true")
    parser.add_argument(
        "--starts", type=int, default=3, help="measured exporter starts per case (default 3)"
    )
    parser.add_argument(
        "--exporter-only", action="store_true", help="only the exporter cases (no --help, agents)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="one start of dcgm-exporter with no warm-up start first: where the install wrote "
        "no bytecode, that start compiles what it imports (an install with --no-compile)",
    )
    parser.add_argument(
        "--phases", type=int, default=0, help="also time an exporter start step by step, N runs"
    )
    args = parser.parse_args()
    if args.exporter_only or args.cold:
        args.skip_help = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
        env["GPU_OPERATOR_SIM_ROOT"] = str(root / "sim")
        if not args.real:
            env["GPU_OPERATOR_SIM"] = args.sim
        (root / "machine-type").write_text("bench\n")
        backend = "real GPU" if args.real else f"sim {args.sim}"
        print(
            f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(f"backend: {backend}\n")
        if not args.skip_help:
            print(
                f"| command (`--help`, {args.help_runs} runs) | min wall s | median wall s "
                "| median CPU s |"
            )
            print("|---|---:|---:|---:|")
            for name, low, median, cpu in help_times(args.help_runs, env):
                print(f"| `{name}` | {low:.3f} | {median:.3f} | {cpu:.3f} |")
            print()
        if args.phases:
            print(
                f"| exporter start, step ({backend}, median of {args.phases}) | s since spawn "
                "| RSS MiB |"
            )
            print("|---|---:|---:|")
            for step, at, rss in phases(env, args.phases):
                print(f"| {step} | {at:.3f} | {rss:.1f} |")
            print()
        if args.cold:
            row = exporter(
                "dcgm-exporter, cold", [binary("dcgm-exporter")], env, args.scrapes, 1, False
            )
            print(
                f"| exporter ({backend}), first start, no warm-up | first series s | RSS ready "
                "MiB | RSS after MiB | peak MiB | scrape p50 ms | scrape p99 ms | series |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            print(
                f"| `{row[0]}` | {row[1]:.3f} | {row[4]:.1f} | {row[5]:.1f} | {row[6]:.1f} | "
                f"{row[7]:.3f} | {row[8]:.3f} | {row[9]} |"
            )
            return
        print(
            f"| exporter ({backend}; {args.starts} starts after a warm-up, {args.scrapes} scrapes "
            "each) | first series s, median (min–max) | RSS ready MiB | RSS after MiB | "
            "peak MiB | scrape p50 ms | scrape p99 ms | series |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        with kubelet_stand_in(root / "kubelet") as kubelet:
            pods = str(kubelet.pod_resources_socket)
            for label, command in (
                ("dcgm-exporter", [binary("dcgm-exporter")]),
                ("gpu-operator exporter", [binary("gpu-operator"), "exporter"]),
                (
                    "dcgm-exporter -k (PodResources List from the kubelet stand-in)",
                    [binary("dcgm-exporter"), "-k", "--pod-resources-kubelet-socket", pods],
                ),
            ):
                row = exporter(label, command, env, args.scrapes, args.starts)
                print(
                    f"| `{row[0]}` | {row[1]:.3f} ({row[2]:.3f}–{row[3]:.3f}) | {row[4]:.1f} | "
                    f"{row[5]:.1f} | {row[6]:.1f} | {row[7]:.3f} | {row[8]:.3f} | {row[9]} |",
                    flush=True,
                )
            print()
            if args.exporter_only:
                return
            print(f"| agent ({backend}) | ready s | RSS MiB | peak MiB |")
            print("|---|---:|---:|---:|")
            ready, rss, hwm = device_plugin(env, kubelet)
        print(f"| `nvidia-device-plugin` (registered) | {ready:.3f} | {rss:.1f} | {hwm:.1f} |")
        ready, rss, hwm = feature_discovery(env, root)
        print(f"| `gpu-feature-discovery` (labels written) | {ready:.3f} | {rss:.1f} | {hwm:.1f} |")


if __name__ == "__main__":
    main()
