"""Opaque NVML handles of the simulator, made of the same ctypes pointer types pynvml uses.

A fake handle is a real ``c_nvmlDevice_t`` (or GI, CI, event set, GPM sample pointer) whose
address encodes what it points at, so it fits anywhere pynvml puts a handle (``nvmlEventData_t``
and ``nvmlGpuInstanceInfo_t`` fields included) and is never dereferenced.
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple

import pynvml

DEVICE = 1
MIG_DEVICE = 2
GPU_INSTANCE = 3
COMPUTE_INSTANCE = 4
EVENT_SET = 5
GPM_SAMPLE = 6

_POINTER_TYPES: dict[int, Any] = {
    DEVICE: pynvml.c_nvmlDevice_t,
    MIG_DEVICE: pynvml.c_nvmlDevice_t,
    GPU_INSTANCE: pynvml.c_nvmlGpuInstance_t,
    COMPUTE_INSTANCE: pynvml.c_nvmlComputeInstance_t,
    EVENT_SET: pynvml.c_nvmlEventSet_t,
    GPM_SAMPLE: pynvml.c_nvmlGpmSample_t,
}


class Decoded(NamedTuple):
    kind: int
    gpu: int
    gi: int
    ci: int


def make(kind: int, gpu: int = 0, gi: int = 0, ci: int = 0) -> Any:
    address = (kind << 40) | (gpu << 24) | (gi << 12) | ci
    return ctypes.cast(ctypes.c_void_p(address), _POINTER_TYPES[kind])


def decode(handle: Any) -> Decoded:
    """Decode a handle; anything that is not one of ours is ``NVML_ERROR_INVALID_ARGUMENT``."""
    try:
        address = ctypes.cast(handle, ctypes.c_void_p).value or 0
    except (ctypes.ArgumentError, TypeError) as err:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT) from err
    kind = address >> 40
    if kind not in _POINTER_TYPES:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
    return Decoded(kind, (address >> 24) & 0xFFFF, (address >> 12) & 0xFFF, address & 0xFFF)
