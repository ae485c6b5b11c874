"""What `make demo` costs: wall time and CPU (user + sys of `gpu-operator sandbox demo` and every
process it started, from getrusage of the reaped children), and where the CPU goes (each process
of its tree sampled from /proc twice a second, grouped by command).

    .venv/bin/python bench/demo.py [--runs N]
"""

from __future__ import annotations

import os
import sys

# bench/operator.py sits beside this file: keep the folder off sys.path so it never shadows the
# stdlib's ``operator`` module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import collections  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def command(pid: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [Path(a.decode(errors="replace")).name for a in argv if a][:3]
    return " ".join(w for w in words if not re.fullmatch(r"python[\d.]*", w))


def one_run() -> tuple[float, float, collections.Counter[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    demo = subprocess.Popen(
        [str(BIN / "gpu-operator"), "sandbox", "demo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree, cpu, names = {str(demo.pid)}, {}, {}
    while demo.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            found = stat(pid)
            if found is None:
                continue
            parent, seconds = found
            if pid in tree or str(parent) in tree:
                tree.add(pid)
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)
                names.setdefault(pid, command(pid))
        time.sleep(0.5)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    by_command: collections.Counter[str] = collections.Counter()
    for pid, seconds in cpu.items():
        by_command[names[pid]] += seconds
    if demo.returncode != 0:
        raise SystemExit(f"sandbox demo exited {demo.returncode}")
    return wall, total, by_command


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    runs = parser.parse_args().runs
    print(f"{'run':>4} {'wall s':>8} {'CPU s':>8}")
    last: collections.Counter[str] = collections.Counter()
    for n in range(runs):
        wall, total, last = one_run()
        print(f"{n + 1:>4} {wall:8.1f} {total:8.1f}")
    print("\nCPU by process command (last run, sampled; processes shorter than 0.5 s undercount)")
    for name, seconds in last.most_common(15):
        print(f"{seconds:8.1f}  {name}")


if __name__ == "__main__":
    main()
