"""What the node's GPUs look like now, read through the NVML facade into plain records that the
pure planner compares with a config (the only NVML reads of ``mig apply``/``assert``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import GpuInfo, GpuInstance, GpuInstanceProfile, MigMode


@dataclass(frozen=True)
class GpuState:
    """One GPU: static facts, its GI profiles (empty when not MIG capable) and its instances."""

    info: GpuInfo
    profiles: tuple[GpuInstanceProfile, ...] = ()
    instances: tuple[GpuInstance, ...] = ()

    @property
    def index(self) -> int:
        return self.info.index

    @property
    def mode(self) -> MigMode | None:
        return self.info.mig_mode

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.info.name})"

    def devices(self) -> Counter[str]:
        """The MIG devices as a multiset of names (a CI smaller than its GI is ``Cc.…``);
        a GI without any compute instance counts as ``<gi name> (no compute instance)``."""
        names: Counter[str] = Counter()
        for gi in self.instances:
            if not gi.compute_instances:
                names[f"{gi.profile_name} (no compute instance)"] += 1
            for ci in gi.compute_instances:
                names[ci.name] += 1
        return names


def observe_gpu(nvml: Nvml, index: int) -> GpuState:
    info = nvml.gpu(index)
    if info.mig_mode is None:
        return GpuState(info)
    return GpuState(info, tuple(nvml.gi_profiles(index)), tuple(nvml.gpu_instances(index)))


def observe(nvml: Nvml) -> list[GpuState]:
    """Every GPU of the node, in NVML (PCI bus) order."""
    return [observe_gpu(nvml, i) for i in range(nvml.device_count())]
