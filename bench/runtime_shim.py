"""Runtime shim benchmark (issue 16: ≤ 20 ms added to ``create`` for a non-GPU container,
≤ 50 ms for a GPU one): our ``nvidia-container-runtime`` built as the image builds it, installed
by the toolkit for a simulated dgx-a100 (8 GPUs: the biggest spec we generate), timed end to end
as containerd runs it (fork + exec of the shim, its work, exec of the low-level runtime).

The added cost is measured exactly: the low-level runtime is ``/bin/true`` in both cases, so
"shim → true" minus "true alone" is the shim's own time; the cases run interleaved, so load
drift hits them alike. With root, ``runc`` and ``busybox``, ``runc create`` with and without the
shim in front is shown too (noisier: runc's own time varies more than the shim costs). For
reference, what a Python shim would pay before any work: ``python3 -S -I`` startup, ``import
json``. Prints one table.

    .venv/bin/python -m bench.runtime_shim                      # prepare + measure here
    .venv/bin/python -m bench.runtime_shim --prepare node.tar    # prepare only (needs the package)
    python3 bench/runtime_shim.py --measure node.tar             # measure only: stdlib, any machine
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "300"))
NODE = Path("/tmp/gpu-operator-shim-bench")
"""Fixed, so a prepared node (its specs name absolute paths) unpacks the same anywhere."""
SHIM = NODE / "nvidia/toolkit/nvidia-container-runtime"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def prepare() -> None:
    """The toolkit's install of the shim for a simulated dgx-a100, under ``NODE``; the low-level
    runtime ``true`` (``runc`` for the runc rows via ``NVIDIA_CONTAINER_RUNTIME_RUNTIMES``)."""
    from gpu_operator.gpu import HardwareSettings, Nvml
    from gpu_operator.toolkit import shim_install
    from gpu_operator.toolkit.runtime_config import ShimSettings
    from gpu_operator.toolkit.runtime_shim import build
    from gpu_operator.toolkit.settings import ToolkitSettings

    shutil.rmtree(NODE, ignore_errors=True)
    os.environ["GPU_OPERATOR_SIM"] = "dgx-a100"
    os.environ["GPU_OPERATOR_SIM_ROOT"] = str(NODE / "sim")
    with Nvml.open(HardwareSettings.from_env()) as nvml:
        version = nvml.system().driver_version
        gpus = nvml.gpus()
    lib = NODE / "driver/usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler", "libnvidia-nvvm"):
        (lib / f"{name}.so.{version}").write_text(name)
    dev = NODE / "devroot/dev"
    dev.mkdir(parents=True)
    names = [f"nvidia{g.minor_number}" for g in gpus]
    for name in [*names, "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]:
        (dev / name).symlink_to("/dev/null")  # a character device to stat, as the real ones
    settings = ToolkitSettings(
        runtime="containerd",
        root=NODE / "nvidia",
        driver_root=NODE / "driver",
        dev_root=dev.parent,
        shim_binary=build(NODE / "built" / "nvidia-container-runtime"),
        runtime_shim=ShimSettings(runtimes=("true",)),
    )
    shim_install.install(settings)
    runc = shutil.which("runc")
    spec = NODE / "runc-spec.json"
    if runc is not None:
        with tempfile.TemporaryDirectory() as where:
            subprocess.run([runc, "spec"], cwd=where, check=True)
            shutil.copy(Path(where) / "config.json", spec)
    else:
        shutil.copy(Path(__file__).parents[1] / "tests/data/oci-runtime-spec/runc-spec.json", spec)


def interleaved(cases: dict[str, tuple[list[str], Callable[[], None]]]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(RUNS):
        for name, (argv, before) in cases.items():
            before()
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=ENV)
            samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def row(name: str, samples: list[float], base: list[float] | None = None) -> str:
    p50 = statistics.median(samples)
    p99 = sorted(samples)[max(int(len(samples) * 0.99) - 1, 0)]
    added = f"**{p50 - statistics.median(base):.2f}**" if base else "–"
    return f"| {name} | {p50:.2f} | {p99:.2f} | {added} |"


def measure() -> list[str]:
    plain = (NODE / "runc-spec.json").read_bytes()
    config = json.loads(plain)
    config["process"]["env"].append("NVIDIA_VISIBLE_DEVICES=0")
    gpu_one = json.dumps(config, indent="\t").encode()
    gpu_all = gpu_one.replace(b"NVIDIA_VISIBLE_DEVICES=0", b"NVIDIA_VISIBLE_DEVICES=all")
    bundle = NODE / "bundle"
    bundle.mkdir(exist_ok=True)

    def put(data: bytes) -> Callable[[], None]:
        return lambda: (bundle / "config.json").write_bytes(data)

    create = ["create", "--bundle", str(bundle), "c"]
    true = shutil.which("true", path=ENV["PATH"]) or "/bin/true"
    shim = str(SHIM)
    got = interleaved(
        {
            "floor": ([true, *create], put(plain)),
            "plain": ([shim, *create], put(plain)),
            "one": ([shim, *create], put(gpu_one)),
            "all": ([shim, *create], put(gpu_all)),
            "start floor": ([true, "start", "c"], lambda: None),
            "start": ([shim, "start", "c"], lambda: None),
            "py": ([sys.executable, "-S", "-I", "-c", "pass"], lambda: None),
            "py json": ([sys.executable, "-S", "-I", "-c", "import json"], lambda: None),
        }
    )
    floor = got["floor"]
    lines = [
        "| case | p50 ms | p99 ms | added p50 ms |",
        "|---|---|---|---|",
        row("`true create …` alone (the floor: fork + exec)", floor),
        row("shim → `true`: `create`, non-GPU container (runc's spec)", got["plain"], floor),
        row("shim → `true`: `create`, GPU container (1 of 8, dgx-a100 spec)", got["one"], floor),
        row("shim → `true`: `create`, GPU container (all 8 GPUs)", got["all"], floor),
        row("shim → `true`: `start` (every verb but create)", got["start"], got["start floor"]),
        row("for reference: `python3 -S -I -c pass`", got["py"], floor),
        row("for reference: `python3 -S -I -c 'import json'`", got["py json"], floor),
    ]
    lines += measure_runc(plain, gpu_one, bundle)
    return lines


def measure_runc(plain: bytes, gpu: bytes, bundle: Path) -> list[str]:
    runc, busybox = shutil.which("runc", path=ENV["PATH"]), shutil.which("busybox")
    if runc is None or busybox is None or os.geteuid() != 0:
        return []
    rootfs = NODE / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, rootfs / "bin" / "sh")  # runc create checks the entrypoint
    state = str(NODE / "runc-state")
    payloads = {}
    for label, data in (("non-GPU", plain), ("GPU", gpu)):
        spec = json.loads(data)
        spec["root"] = {"path": str(rootfs), "readonly": True}
        spec["process"]["terminal"] = False
        payloads[label] = json.dumps(spec).encode()
    lines = []
    for label, payload in payloads.items():
        samples: dict[str, list[float]] = {"runc": [], "shim": []}
        for _ in range(max(RUNS // 5, 20)):
            for name, binary in (("runc", runc), ("shim", str(SHIM))):
                (bundle / "config.json").write_bytes(payload)
                env = {**ENV, "NVIDIA_CONTAINER_RUNTIME_RUNTIMES": runc}
                start = time.perf_counter()
                subprocess.run(
                    [binary, "--root", state, "create", "--bundle", str(bundle), "c"],
                    check=True,
                    env=env,
                )
                samples[name].append((time.perf_counter() - start) * 1000)
                subprocess.run([runc, "--root", state, "delete", "--force", "c"], check=True)
        lines.append(row(f"`runc create`, {label} container", samples["runc"]))
        lines.append(row(f"shim → `runc create`, {label}", samples["shim"], samples["runc"]))
    return lines


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--prepare"]:
        prepare()
        with tarfile.open(args[1], "w") as tar:
            tar.add(NODE, arcname=NODE.name)
        return
    if args[:1] == ["--measure"]:
        shutil.rmtree(NODE, ignore_errors=True)
        with tarfile.open(args[1]) as tar:
            if hasattr(tarfile, "tar_filter"):  # Python >= 3.12 (and 3.11.4+)
                tar.extractall(NODE.parent, filter="tar")
            else:
                tar.extractall(NODE.parent)  # our own archive
    else:
        prepare()
    lines = measure()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.python_version()}, {RUNS} runs"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
