"""Simulated compute mode and compute time-slice of a full GPU (state fields ``computeMode``
and ``timeslice``, absent = the defaults): pynvml's ``nvmlDeviceGet/SetComputeMode`` and, for
what real drivers only offer through ``nvidia-smi compute-policy --set-timeslice``, the
simulator's own ``simDeviceGet/SetTimeslice`` (``gpu.compute_policy`` picks them)."""

from __future__ import annotations

from typing import Any

import pynvml

from gpu_operator.gpu.fake.nvml import err
from gpu_operator.gpu.fake.nvml_mig import FakeNvmlMig

_MODES = (
    pynvml.NVML_COMPUTEMODE_DEFAULT,
    pynvml.NVML_COMPUTEMODE_EXCLUSIVE_THREAD,
    pynvml.NVML_COMPUTEMODE_PROHIBITED,
    pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS,
)
TIMESLICES = (0, 1, 2, 3)


class FakeNvmlPolicy(FakeNvmlMig):
    def nvmlDeviceGetComputeMode(self, handle: Any) -> int:
        _, gpu, _ = self._full(handle)
        return int(gpu.get("computeMode", pynvml.NVML_COMPUTEMODE_DEFAULT))

    def nvmlDeviceSetComputeMode(self, handle: Any, mode: int) -> None:
        if int(mode) not in _MODES:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._full(handle)
        with self._mutating(handle) as (_, gpu):
            gpu["computeMode"] = int(mode)

    def simDeviceGetTimeslice(self, handle: Any) -> int:
        _, gpu, _ = self._full(handle)
        return int(gpu.get("timeslice", 0))

    def simDeviceSetTimeslice(self, handle: Any, value: int) -> None:
        if int(value) not in TIMESLICES:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._full(handle)
        with self._mutating(handle) as (_, gpu):
            gpu["timeslice"] = int(value)
