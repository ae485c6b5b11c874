"""Give freed heap memory back to the system: glibc's ``malloc_trim(0)``, for the long-running
agents that allocate a lot once and then little (issue 15).

NVML's start and shutdown, the inventory and gRPC's set-up leave megabytes of freed but still
resident heap behind (glibc keeps it for reuse). Feature discovery opens and shuts NVML on every
labelling pass and then sleeps; the device plugin starts once and then serves a few small calls.
Trimming after those points is what their resident size at rest is made of: on the H100 of
docs/performance.md, 10 MiB of feature discovery's 56. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # this process's C library
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages of every malloc arena to the system; True if any went back."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
