"""The sandbox's own timings: from start (API server, nodes, chart install) to every operand pod
settled and the ClusterPolicy ready; from a MIG relabel (all-balanced → all-1g.5gb) to the new
resources being allocatable; and the sandbox's CPU (this process and its children) for it.
Then the operator's scale run at ``--scale`` nodes (registered in the emulator without
operands: CPU, requests, RSS), which is ``bench/operator.py --nodes N`` run as a child.

    .venv/bin/python bench/sandbox.py [--nodes dgx-a100:2] [--scale 5000 | --scale 0]
"""

from __future__ import annotations

import os
import sys

# bench/operator.py sits beside this file: keep the folder off sys.path so it never shadows the
# stdlib's ``operator`` module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from gpu_operator.names import MIG_CONFIG_LABEL  # noqa: E402
from gpu_operator.sandbox.cluster import Sandbox  # noqa: E402
from gpu_operator.sandbox.demo import NAMESPACE, SEED_VALUES, story_blockers  # noqa: E402
from gpu_operator.sandbox.nodes import parse_nodes  # noqa: E402


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="dgx-a100:2")
    parser.add_argument("--scale", type=int, default=5000, help="operator scale run; 0: skip")
    args = parser.parse_args()
    specs = parse_nodes(args.nodes, "rocky:8.5")
    names = [s.name for s in specs]
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="gos-bench-") as base:
        cpu0, t0 = cpu_s(), time.monotonic()
        sandbox = Sandbox(specs, Path(base), driver_delay_s=2.0).start()
        try:
            sandbox.install(SEED_VALUES, NAMESPACE)
            assert sandbox.rest is not None
            rest = sandbox.rest
            ok = sandbox.wait_until(lambda: not story_blockers(rest, names, {}), 180)
            rows.append(
                ("up → all operands settled, policy ready", time.monotonic() - t0, cpu_s() - cpu0)
            )
            if not ok:
                print("not settled:", story_blockers(rest, names, {})[:5])
            for label, layout in (
                ("all-balanced", {"nvidia.com/mig-3g.20gb": 8}),
                ("all-1g.5gb", {"nvidia.com/mig-1g.5gb": 56}),
            ):
                cpu1, t1 = cpu_s(), time.monotonic()
                for name in names:
                    rest.patch("nodes", name, {"metadata": {"labels": {MIG_CONFIG_LABEL: label}}})
                sandbox.wait_until(
                    lambda layout=layout: not story_blockers(rest, names, layout), 120
                )
                rows.append(
                    (f"relabel → {label} allocatable", time.monotonic() - t1, cpu_s() - cpu1)
                )
        finally:
            sandbox.stop()
    print(f"{'measure':48} {'wall s':>8} {'CPU s':>8}")
    for what, wall, cpu in rows:
        print(f"{what:48} {wall:8.1f} {cpu:8.1f}")
    if args.scale:
        print(f"\noperator scale run, {args.scale} nodes (bench/operator.py):", flush=True)
        scale = [sys.executable, os.path.join(_HERE, "operator.py"), "--nodes", str(args.scale)]
        subprocess.run(scale, check=True)


if __name__ == "__main__":
    main()
