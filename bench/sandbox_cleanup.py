"""How long a sandbox takes to leave nothing behind: ``sandbox down`` (from the command's start
to its return), SIGTERM to ``sandbox demo``'s process group (to its exit), SIGKILL of it (to the
moment no process naming its directory is left), each once the operator and an exporter on each
node are Ready; and the issue's literal ``timeout 20 gpu-operator sandbox demo`` (total wall;
what is left right after it returns). A process "of the sandbox" names its directory in its
command line or environment (/proc), as in tests/e2e/test_sandbox_cleanup.py.

    .venv/bin/python bench/sandbox_cleanup.py [--runs 1]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from gpu_operator.sandbox.rest import Rest  # noqa: E402

BIN = Path(sys.executable).parent


def naming(text: str) -> list[int]:
    needle, found = text.encode(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_ready(kubeconfig: Path, exporters: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not kubeconfig.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {kubeconfig}")
        time.sleep(0.5)
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    rest = Rest(server)
    try:
        while time.monotonic() < deadline:
            try:
                pods = rest.list("pods")
            except OSError:
                pods = []
            ready = [
                p["metadata"]["name"]
                for p in pods
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or []
                )
            ]
            if any(n.startswith("gpu-operator-") for n in ready) and (
                sum(n.startswith("nvidia-dcgm-exporter-") for n in ready) >= exporters
            ):
                return
            time.sleep(0.5)
    finally:
        rest.close()
    raise SystemExit("pods not Ready in time")


def demo_killed(sig: signal.Signals) -> tuple[float, int]:
    """Seconds from the signal to nothing left; processes left when the demo itself exited."""
    tmp = Path(tempfile.mkdtemp(prefix="gos-"))
    demo = subprocess.Popen(
        [str(BIN / "gpu-operator"), "sandbox", "demo"],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp.glob("gos-demo-*/kubeconfig")) and time.monotonic() < deadline:
            time.sleep(0.5)
        wait_ready(next(tmp.glob("gos-demo-*/kubeconfig")), 2)
        start = time.monotonic()
        os.killpg(demo.pid, sig)
        demo.wait()
        at_exit = len(naming(str(tmp)))
        while naming(str(tmp)):
            time.sleep(0.01)
        return time.monotonic() - start, at_exit
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def up_down() -> tuple[float, int]:
    """Seconds `sandbox down` takes; processes left when it returned."""
    tmp = Path(tempfile.mkdtemp(prefix="gos-"))
    directory, kubeconfig = tmp / "sbx", tmp / "kubeconfig"
    up = subprocess.Popen(
        [
            *(str(BIN / "gpu-operator"), "sandbox", "up"),
            *("--dir", str(directory), "--kubeconfig", str(kubeconfig)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(kubeconfig, 2)
        start = time.monotonic()
        subprocess.run(
            [str(BIN / "gpu-operator"), "sandbox", "down", "--dir", str(directory)],
            check=True,
            capture_output=True,
        )
        took = time.monotonic() - start
        return took, len([p for p in naming(str(directory)) if p != up.pid])
    finally:
        if up.poll() is None:
            up.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def timeout_20() -> tuple[float, int]:
    """`timeout 20 gpu-operator sandbox demo`: total wall; processes left once it returned."""
    tmp = Path(tempfile.mkdtemp(prefix="gos-"))
    start = time.monotonic()
    subprocess.run(
        ["timeout", "20", str(BIN / "gpu-operator"), "sandbox", "demo"],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    took = time.monotonic() - start
    left = len(naming(str(tmp)))
    for pid in naming(str(tmp)):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)
    return took, left


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    runs = parser.parse_args().runs
    rows = []
    for _ in range(runs):
        rows.append(("sandbox down (dgx-a100:2, chart), to its return", *up_down()))
        rows.append(("SIGTERM to sandbox demo, to its exit", *demo_killed(signal.SIGTERM)))
        rows.append(("SIGKILL of sandbox demo, to nothing left", *demo_killed(signal.SIGKILL)))
        rows.append(("timeout 20 gpu-operator sandbox demo, total", *timeout_20()))
    print(f"{'measure':55} {'wall s':>7} {'left at return':>15}")
    for name, took, left in rows:
        print(f"{name:55} {took:7.2f} {left:15d}")


if __name__ == "__main__":
    main()
