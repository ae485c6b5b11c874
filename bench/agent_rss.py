"""Where the device plugin's and feature discovery's resident memory is (issue 15).

1. Each agent as a node runs it (``nvidia-device-plugin`` registered with the kubelet stand-in,
   ``gpu-feature-discovery`` after its first labels file), one second later: VmRSS, anonymous
   and file-backed parts, threads, and the largest mappings of /proc/PID/smaps; once with
   glibc's default malloc arenas and once with ``MALLOC_ARENA_MAX=2``.
2. In a fresh interpreter, one step at a time, what each import or action adds to VmRSS
   (the order an agent loads them: the CLI, the settings, the NVML facade, NVML's start, the
   device plugin's protobuf and ``grpc_h2``, a gRPC server and one dial of it; then, for
   comparison, what neither agent's process loads any more: typer, YAML without a file,
   pydantic, grpcio).

    python bench/agent_rss.py              # simulated h200 (GPU_OPERATOR_SIM)
    python bench/agent_rss.py --real       # this machine's GPUs

Prints markdown tables for docs/performance.md.
"""

from __future__ import annotations

import os
import sys

# bench/operator.py would shadow the stdlib's ``operator``: keep this folder off sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

STEPS = r"""
import gc, os, sys, tempfile, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
marks = [("python " + sys.version.split()[0], rss())]
def mark(name):
    gc.collect()
    marks.append((name, rss()))
import gpu_operator.cli; mark("gpu_operator.cli (no typer)")
import gpu_operator.deviceplugin.process, gpu_operator.discovery.process
mark("the two agents' process modules")
import gpu_operator.deviceplugin.settings, gpu_operator.discovery.settings
mark("settings + v1 config model")
import gpu_operator.discovery.loop; mark("feature discovery's label rules")
import pynvml; mark("import pynvml")
from gpu_operator.gpu import HardwareSettings, Nvml
nvml = Nvml.open(HardwareSettings.from_env()); gpus = nvml.gpus(); mark("nvmlInit + inventory")
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
mark("protobuf + device plugin messages")
from gpu_operator.grpc_h2.client import unary_call
from gpu_operator.grpc_h2.server import Method, Server
mark("h2 + grpc_h2 (gRPC without grpcio)")
import gpu_operator.deviceplugin.plugin; mark("the device plugin's modules")
from pathlib import Path
path = Path(tempfile.mkdtemp()) / "x.sock"
options = lambda request, context: pb.DevicePluginOptions()
server = Server(path, {"/v1beta1.DevicePlugin/GetDevicePluginOptions": Method(
    options, pb.Empty.FromString, lambda m: m.SerializeToString())})
server.start(); time.sleep(0.3)
mark("a gRPC server serving")
unary_call(path, "/v1beta1.DevicePlugin/GetDevicePluginOptions", b"", 5)
time.sleep(0.3); mark("one dial and call")
import typer; mark("not on either path: typer and click (--help only)")
import yaml; mark("not on either path: yaml (only with a config file)")
import pydantic; mark("not on either path: pydantic")
threads = len(os.listdir("/proc/self/task"))
server.stop(); nvml.close()
import grpc; mark("not on either path: grpcio (the plugin served with it until issue 15)")
for name, value in marks:
    print(f"{name}\t{value:.1f}")
print(f"threads\t{threads}")
"""


def binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        sys.exit(f"agent_rss: {name} is not installed (pip install the project first)")
    return found


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return out


def mappings(pid: int, top: int = 6) -> list[tuple[str, float]]:
    sizes: Counter[str] = Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split()
            name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            sizes[name] += int(line.split()[1])
    return [(n, kib / 1024) for n, kib in sizes.most_common(top)]


def measure(command: list[str], env: dict[str, str], ready: Any) -> dict[str, Any]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if process.poll() is not None:
                sys.exit(f"agent_rss: {command[0]} exited with {process.returncode}")
            if time.monotonic() > deadline:
                sys.exit(f"agent_rss: {command[0]} not ready in 30 s")
            time.sleep(0.005)
        time.sleep(1)
        return {**status(process.pid), "maps": mappings(process.pid)}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def agents(env: dict[str, str], root: Path) -> list[tuple[str, str, dict[str, Any]]]:
    from gpu_operator.sandbox.kubelet import Kubelet

    rows = []
    for arenas in ("default", "2"):
        run_env = dict(env)
        if arenas != "default":
            run_env["MALLOC_ARENA_MAX"] = arenas
        kubelet = Kubelet(root / f"dp-{arenas}", root / f"pr-{arenas}", dial_timeout_s=2)
        kubelet.start()
        try:
            rows.append(
                (
                    "nvidia-device-plugin",
                    arenas,
                    measure(
                        [binary("nvidia-device-plugin")],
                        {**run_env, "KUBELET_SOCKET": str(kubelet.socket)},
                        lambda kubelet=kubelet: bool(kubelet.manager.registrations),
                    ),
                )
            )
        finally:
            kubelet.stop()
        output = root / f"gfd-{arenas}"
        rows.append(
            (
                "gpu-feature-discovery",
                arenas,
                measure(
                    [
                        binary("gpu-feature-discovery"),
                        "--output-file",
                        str(output),
                        "--sleep-interval",
                        "1h",
                    ],
                    {
                        **run_env,
                        "NODE_NAME": "bench",
                        "GFD_MACHINE_TYPE_FILE": str(root / "machine-type"),
                    },
                    output.exists,
                ),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="this machine's GPUs, not the sim")
    parser.add_argument("--sim", default="h200", help="simulated node (default h200)")
    args = parser.parse_args()
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
        print(f"| agent ({backend}) | malloc arenas | RSS MiB | anon | file | threads | top maps |")
        print("|---|---|---:|---:|---:|---:|---|")
        for name, arenas, row in agents(env, root):
            maps = ", ".join(f"{n} {mib:.1f}" for n, mib in row["maps"])
            print(
                f"| `{name}` | {arenas} | {row['VmRSS'] / 1024:.1f} | {row['RssAnon'] / 1024:.1f} "
                f"| {row['RssFile'] / 1024:.1f} | {row['Threads']} | {maps} |"
            )
        print()
        steps = subprocess.run(
            [sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, check=False
        )
        if steps.returncode != 0:
            sys.exit(f"agent_rss: the step run failed:\n{steps.stderr}")
        print(f"| step ({backend}, one interpreter) | VmRSS MiB | added |")
        print("|---|---:|---:|")
        previous = 0.0
        for line in steps.stdout.splitlines():
            name, value = line.split("\t")
            if name == "threads":
                print(f"| threads at the end | {value} | |")
                continue
            print(f"| {name} | {float(value):.1f} | +{float(value) - previous:.1f} |")
            previous = float(value)


if __name__ == "__main__":
    main()
