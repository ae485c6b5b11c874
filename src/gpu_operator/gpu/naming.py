"""MIG profile names, derived from NVML numbers exactly as upstream (go-nvlib) derives them.

``[<C>c.]<G>g.<GB>gb[+me|+me.all|-me|+gfx]`` where ``G`` is the GI's compute slices, ``C`` the
CI's (omitted when it equals ``G``), and ``GB`` is not ``memorySizeMB / 1024`` but::

    frac = ceil(memorySizeMB * 2**20 / totalDeviceBytes * 8) / 8
    GB   = round_half_up(frac * ceil(totalDeviceBytes / 2**30))

(H200: 3g memorySizeMB 71424 of 143771 MiB → 4/8 → 0.5 × 141 = 70.5 → ``3g.71gb``). Python's
``round`` rounds half to even, which would give 70, hence ``floor(x + 0.5)``.
"""

from __future__ import annotations

import math

GIB = 2**30
MIB = 2**20

# NVML_GPU_INSTANCE_PROFILE_* enum → name suffix.
_SUFFIX_BY_GI_PROFILE: dict[int, str] = {
    0x7: "+me",  # 1_SLICE_REV1
    0x8: "+me",  # 2_SLICE_REV1
    0xA: "+gfx",  # 1_SLICE_GFX
    0xB: "+gfx",  # 2_SLICE_GFX
    0xC: "+gfx",  # 4_SLICE_GFX
    0x11: "+gfx",  # 3_SLICE_GFX
    0xD: "-me",  # 1_SLICE_NO_ME
    0xE: "-me",  # 2_SLICE_NO_ME
    0xF: "+me.all",  # 1_SLICE_ALL_ME
    0x10: "+me.all",  # 2_SLICE_ALL_ME
}


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def memory_label_gb(memory_size_mb: int, total_device_bytes: int) -> int:
    """The ``GB`` of a profile name; ``total_device_bytes`` is the parent GPU's memory total."""
    if total_device_bytes <= 0:
        raise ValueError("total device memory must be positive")
    eighths = math.ceil(memory_size_mb * MIB / total_device_bytes * 8)
    return round_half_up(eighths / 8 * math.ceil(total_device_bytes / GIB))


def gi_profile_suffix(nvml_gi_profile: int) -> str:
    return _SUFFIX_BY_GI_PROFILE.get(nvml_gi_profile, "")


def gi_profile_name(
    nvml_gi_profile: int, slice_count: int, memory_size_mb: int, total_device_bytes: int
) -> str:
    """e.g. ``1g.18gb``, ``1g.18gb+me``, ``3g.71gb``."""
    gb = memory_label_gb(memory_size_mb, total_device_bytes)
    return f"{slice_count}g.{gb}gb{gi_profile_suffix(nvml_gi_profile)}"


def ci_profile_name(ci_slice_count: int, gi_slice_count: int, gi_name: str) -> str:
    """``1c.3g.20gb`` for a 1-slice CI in a 3g GI; the GI name itself for the full CI."""
    if ci_slice_count == gi_slice_count:
        return gi_name
    return f"{ci_slice_count}c.{gi_name}"
