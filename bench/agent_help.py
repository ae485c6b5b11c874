"""How long each agent's ``--help`` takes (issue 18: the settings engine on every agent's start).

Runs ``gpu-operator AGENT --help`` (and ``mig apply --help``, ``toolkit cdi-generate --help``)
as a fresh process N times per case, interleaved, and reports the wall time and the CPU time
(user + system of the child) as min and median, so a loaded machine shows in the spread rather
than in the minimum. ``--base DIR`` also runs a second source tree (``git archive REV src |
tar -x -C DIR``) for a before/after on the same machine in the same run.

    python bench/agent_help.py                 # this checkout
    python bench/agent_help.py --base /tmp/base --runs 9

Prints a markdown table for docs/performance.md.
"""

from __future__ import annotations

import os
import sys

# bench/operator.py would shadow the stdlib's ``operator``: keep this folder off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

CASES = [
    ("validator",),
    ("config-manager",),
    ("mig", "apply"),
    ("node-labeler",),
    ("toolkit", "cdi-generate"),
    ("mig-manager",),
    ("driver-manager",),
    ("wait-for",),
]
RUN = "import sys; from gpu_operator.cli import main; main(sys.argv[1:])"


def once(src: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``gpu-operator ARGS --help`` from source tree ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", RUN, *args, "--help"],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--base", type=Path, help="a second tree holding src/ (before)")
    args = parser.parse_args()
    trees = {"this": Path(__file__).resolve().parents[1] / "src"}
    if args.base is not None:
        trees = {"before": args.base / "src", **trees}
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, {args.runs} runs"
    )
    head = " | ".join(f"{t} wall min/med s | {t} CPU min/med s" for t in trees)
    print(f"\n| command | {head} |")
    print("|---|" + "---|---|" * len(trees))
    for case in CASES:
        times: dict[str, list[tuple[float, float]]] = {t: [] for t in trees}
        for _ in range(args.runs):
            for name, src in trees.items():
                times[name].append(once(src, case))
        cells = []
        for name in trees:
            walls = [w for w, _ in times[name]]
            cpus = [c for _, c in times[name]]
            cells.append(f"{min(walls):.3f} / {statistics.median(walls):.3f}")
            cells.append(f"{min(cpus):.3f} / {statistics.median(cpus):.3f}")
        print(f"| `{' '.join(case)} --help` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
