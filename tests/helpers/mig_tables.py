"""Each catalogue model's GI profiles, read once through the
NVML facade from a simulated GPU of that model."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pynvml

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInstanceProfile

MIG_MODELS = [
    "A100-SXM4-40GB",
    "A100-SXM4-80GB",
    "A30-24GB",
    "H100-SXM5-80GB",
    "H100-NVL-94GB",
    "H200-141GB",
    "GH200-96GB",
]

_ROOT = Path(tempfile.mkdtemp(prefix="mig-profiles-"))


@functools.cache
def profiles_of(model: str) -> tuple[GpuInstanceProfile, ...]:
    """GI profiles of one GPU of ``model`` as the facade reports them (simulated)."""
    assert pynvml  # the simulator never calls the real nvmlInit
    with Nvml.open(HardwareSettings(sim=model, sim_root=_ROOT)) as nvml:
        return tuple(nvml.gi_profiles(0))


def by_name(model: str, *names: str) -> list[GpuInstanceProfile]:
    table = {p.name: p for p in profiles_of(model)}
    return [table[n] for n in names]
