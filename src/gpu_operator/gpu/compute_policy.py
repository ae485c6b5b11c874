"""Compute mode and time-slice of a full GPU, the two settings the DRA driver's sharing changes
(``dra.sharing``): compute mode through NVML (``nvmlDeviceSetComputeMode``, what ``nvidia-smi
-c`` calls), the time-slice through ``nvidia-smi compute-policy -i <uuid> --set-timeslice <n>``
as upstream's DRA driver runs it (NVML has no call for it). On the simulator both are state of
the simulated GPU (``simDeviceSetTimeslice``): nothing is run.

These change a real GPU's settings: only the DRA driver calls them, for the GPUs of a claim
that asks for it, and puts the defaults back on unprepare."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from gpu_operator.errors import GpuError
from gpu_operator.gpu.session import NvmlSession

COMPUTE_MODES = ("DEFAULT", "EXCLUSIVE_THREAD", "PROHIBITED", "EXCLUSIVE_PROCESS")
"""``NVML_COMPUTEMODE_*`` by value, with ``nvidia-smi -c``'s names."""
DEFAULT_TIMESLICE = 0


def compute_mode(nvml: NvmlSession, index: int) -> str:
    n = nvml.nvml
    value = nvml._call(
        "nvmlDeviceGetComputeMode", n.nvmlDeviceGetComputeMode, nvml.handle(index), gpu=index
    )
    return COMPUTE_MODES[int(value)] if 0 <= int(value) < len(COMPUTE_MODES) else str(value)


def set_compute_mode(nvml: NvmlSession, index: int, mode: str) -> None:
    n = nvml.nvml
    nvml._call(
        "nvmlDeviceSetComputeMode",
        n.nvmlDeviceSetComputeMode,
        nvml.handle(index),
        COMPUTE_MODES.index(mode),
        gpu=index,
    )


def simulated(nvml: NvmlSession) -> bool:
    return hasattr(nvml.nvml, "simDeviceSetTimeslice")


def timeslice(nvml: NvmlSession, index: int) -> int | None:
    """The simulated GPU's time-slice setting; ``None`` on a real GPU (NVML can't say)."""
    if not simulated(nvml):
        return None
    return int(nvml._call("timeslice", nvml.nvml.simDeviceGetTimeslice, nvml.handle(index)))


def set_timeslice(
    nvml: NvmlSession,
    index: int,
    interval: int,
    *,
    nvidia_smi: Sequence[str] = ("nvidia-smi",),
    env: Mapping[str, str] | None = None,
) -> None:
    """Set the GPU's compute time-slice (0 default, 1 short, 2 medium, 3 long)."""
    if simulated(nvml):
        nvml._call(
            "set timeslice",
            nvml.nvml.simDeviceSetTimeslice,
            nvml.handle(index),
            interval,
            gpu=index,
        )
        return
    uuid = nvml.gpu(index).uuid
    argv = [*nvidia_smi, "compute-policy", "-i", uuid, "--set-timeslice", str(interval)]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GpuError(f"GPU {index}: {' '.join(argv)}: {error}") from error
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise GpuError(
            f"GPU {index}: {' '.join(argv)} exited {done.returncode}"
            + (f": {said[-1]}" if said else "")
        )
