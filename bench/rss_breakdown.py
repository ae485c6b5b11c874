"""Where an agent's resident memory is: the NVML library and driver against Python's own.

1. In this process, step by step: RssAnon / RssFile after Python's start, ``import pynvml``,
   ``nvmlInit``, a device query, a telemetry sample, a GPM sample, an XID event set.
2. The running exporter (``dcgm-exporter``, real GPU or ``--sim``): its RSS by mapping (top
   entries of /proc/PID/smaps), with glibc's default malloc arenas and with MALLOC_ARENA_MAX=2.

    python bench/rss_breakdown.py [--sim h200]
"""

from __future__ import annotations

import os
import sys

# bench/operator.py would shadow the stdlib's ``operator``: keep this folder off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import http.client  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402


def status(pid: int | str = "self") -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def show(step: str, pid: int | str = "self") -> None:
    s = status(pid)
    print(
        f"| {step} | {s['VmRSS'] / 1024:.1f} | {s['RssAnon'] / 1024:.1f} | "
        f"{s['RssFile'] / 1024:.1f} | {s.get('RssShmem', 0) / 1024:.1f} | {s['Threads']} |"
    )


def by_mapping(pid: int, top: int = 12) -> list[tuple[str, float]]:
    totals: Counter[str] = Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            name = fields[5] if len(fields) > 5 else "[anon]"
            if "site-packages" in name or "/tmp/site" in name:
                name = ".../" + "/".join(name.split("/")[-2:])
        elif fields and fields[0] == "Rss:":
            totals[name] += int(fields[1])
    return [(n, kib / 1024) for n, kib in totals.most_common(top)]


def in_process(sim: str | None) -> None:
    print("| step (this process) | RSS MiB | anon | file | shmem | threads |")
    print("|---|---:|---:|---:|---:|---:|")
    show("python started")
    from gpu_operator.gpu import HardwareSettings, Nvml

    show("gpu_operator.gpu imported")
    import pynvml  # noqa: F401

    show("pynvml imported")
    root = tempfile.mkdtemp()
    nvml = Nvml.open(HardwareSettings(sim=sim, sim_root=Path(root)))
    show("nvmlInit")
    nvml.gpus()
    show("gpu(i) for every GPU")
    nvml.telemetry(0)
    show("telemetry(0) with energy")
    if nvml.gpm_supported(0):
        nvml.gpm_sample(0, [1, 2, 5, 10], interval_s=0.05)
        show("GPM sample")
    with nvml.watch_events() as watcher:
        watcher.wait(1)
        show("XID event set")
    nvml.close()


def exporter(env: dict[str, str], label: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("dcgm-exporter") or str(Path(sys.executable).parent / "dcgm-exporter")
    process = subprocess.Popen(
        [binary, "-a", f"127.0.0.1:{port}"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/metrics")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.01)
        for _ in range(200):
            connection.request("GET", "/metrics")
            connection.getresponse().read()
        print(f"\n{label}:\n")
        print("| exporter | RSS MiB | anon | file | shmem | threads |")
        print("|---|---:|---:|---:|---:|---:|")
        show("after 200 scrapes", process.pid)
        print("\n| mapping | RSS MiB |\n|---|---:|")
        for name, mib in by_mapping(process.pid):
            print(f"| `{name}` | {mib:.1f} |")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default=None, help="a simulated node instead of the real GPU")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env["GPU_OPERATOR_SIM_ROOT"] = tempfile.mkdtemp()
    if args.sim:
        env["GPU_OPERATOR_SIM"] = args.sim
    in_process(args.sim)
    exporter(env, "exporter, glibc defaults")
    exporter({**env, "MALLOC_ARENA_MAX": "2"}, "exporter, MALLOC_ARENA_MAX=2")


if __name__ == "__main__":
    main()
