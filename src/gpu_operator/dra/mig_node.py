"""The driver's dynamic MIG on one node (feature gate ``DynamicMIG``): the GPUs with MIG mode on
(never toggled here), what each publishes (``mig_devices.slice_content``: the whole GPU with its
counters, its counter set, its MIG devices in the placement preference's order for the instances
there; instances the driver did not create taken off), and prepare/unprepare of a MIG device
through a freshly opened NVML (``mig_prepare``). A MIG device's CDI device is the toolkit
generator's: the parent's ``/dev/nvidia<minor>`` plus the GPU and compute instance's
``/dev/nvidia-caps/nvidia-cap<N>`` access nodes."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from gpu_operator.dra import mig_prepare
from gpu_operator.dra.devices import device_name, gpu_device
from gpu_operator.dra.mig_devices import MigGpu, parse_device_name, slice_content
from gpu_operator.dra.mig_placement import RankKey, rank_key
from gpu_operator.dra.mig_prepare import PreparedMig
from gpu_operator.dra.slices import GpuGroup
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInfo, GpuInstanceProfile, MigDevice, Placement, SystemInfo
from gpu_operator.mig.placement import Placed

_GROUPS_KEPT = 256


def mig_enabled(gpu: GpuInfo) -> bool:
    return gpu.mig_mode is not None and gpu.mig_mode.enabled


def as_mig_device(prepared: PreparedMig) -> MigDevice:
    """What the CDI generator needs of a prepared MIG device (ids, UUID), from its checkpoint."""
    return MigDevice(
        uuid=prepared.uuid,
        parent_index=prepared.parent_index,
        parent_uuid=prepared.parent_uuid,
        index=0,
        gpu_instance_id=prepared.gpu_instance_id,
        compute_instance_id=prepared.compute_instance_id,
        profile=prepared.profile,
        gi_profile_id=prepared.profile_id,
        placement=Placement(prepared.start, prepared.size),
        memory_total_bytes=0,
        multiprocessors=0,
    )


def _instances(
    nvml: Nvml, index: int, profiles: Sequence[GpuInstanceProfile], owned: Collection[str]
) -> tuple[tuple[Placed, ...], tuple[Placed, ...]]:
    """The GPU's instances the driver did not create (``foreign``) and those it did."""
    by_id = {p.id: p for p in profiles}
    ours_ids = {m.gpu_instance_id for m in nvml.mig_devices(index) if m.uuid in owned}
    foreign: list[Placed] = []
    ours: list[Placed] = []
    for gi in nvml.gpu_instances(index):
        (ours if gi.id in ours_ids else foreign).append(
            Placed(by_id[gi.profile_id], gi.placement.start)
        )
    return _sorted(foreign), _sorted(ours)


def _sorted(placed: list[Placed]) -> tuple[Placed, ...]:
    return tuple(sorted(placed, key=lambda p: (p.start, p.profile.id)))


@dataclass
class MigNode:
    """The node's GPUs under dynamic MIG (those with MIG mode on are read as MIG GPUs)."""

    hardware: HardwareSettings
    system: SystemInfo
    gpus: Sequence[GpuInfo]

    def __post_init__(self) -> None:
        self._by_minor = {g.minor_number: g for g in self.gpus}
        self._profiles: dict[int, tuple[GpuInstanceProfile, ...]] = {}
        self._groups: dict[tuple[int, tuple[Placed, ...], tuple[Placed, ...]], GpuGroup] = {}
        """(GPU index, its foreign instances, ours) → its part of the pool."""

    def owns(self, name: str) -> bool:
        """Whether ``name`` is a MIG device of one of these GPUs."""
        found = parse_device_name(name)
        return found is not None and found.minor in self._by_minor

    def parent(self, name: str) -> GpuInfo:
        found = parse_device_name(name)
        assert found is not None
        return self._by_minor[found.minor]

    def groups(self, owned: Collection[str]) -> list[GpuGroup]:
        """Each GPU's part of the pool, read now (``owned``: the MIG UUIDs the driver made): a
        GPU whose MIG mode is on now is published with its MIG devices, one with MIG off as a
        plain full GPU (a mode changed by the MIG manager is followed at the next read)."""
        out = []
        with Nvml.open(self.hardware) as nvml:
            for gpu in self.gpus:
                mode = nvml.mig_mode(gpu.index)
                if mode is None or not mode.enabled:
                    out.append(GpuGroup(device_name(gpu), (gpu_device(gpu, self.system),)))
                    continue
                if gpu.index not in self._profiles:
                    self._profiles[gpu.index] = tuple(nvml.gi_profiles(gpu.index))
                profiles = self._profiles[gpu.index]
                foreign, ours = _instances(nvml, gpu.index, profiles, owned)
                group = self._groups.get((gpu.index, foreign, ours))
                if group is None:
                    group = self._group(gpu, profiles, foreign, ours)
                    if len(self._groups) >= _GROUPS_KEPT:
                        self._groups.clear()
                    self._groups[(gpu.index, foreign, ours)] = group
                out.append(group)
        return out

    def _group(
        self,
        gpu: GpuInfo,
        profiles: tuple[GpuInstanceProfile, ...],
        foreign: tuple[Placed, ...],
        ours: tuple[Placed, ...],
    ) -> GpuGroup:
        """The GPU's part of the pool, its MIG devices in the placement preference's order for
        the instances there now (a scheduler that takes the first device that fits, as
        Kubernetes' does, then takes the solver's choice on this GPU)."""
        whole = gpu_device(gpu, self.system)
        mig = MigGpu(
            gpu.minor_number, gpu.uuid, profiles, attributes=whole["attributes"], foreign=foreign
        )
        content = slice_content(mig, full_gpu=whole)
        fixed = [*foreign, *ours]
        used = 0
        for placed in fixed:
            used |= placed.mask
        by_id = {p.id: p for p in profiles}

        def key(device: Mapping[str, object]) -> tuple[int, RankKey]:
            found = parse_device_name(str(device["name"]))
            if found is None:  # the whole GPU stays first
                return (-1, ((), 0, 0, 0))
            placed = Placed(by_id[found.profile_id], found.start)
            return (int(bool(placed.mask & used)), rank_key(profiles, fixed, placed))

        devices = sorted(content["devices"], key=key)
        return GpuGroup(device_name(gpu), tuple(devices), tuple(content["sharedCounters"]))

    def prepare(self, name: str, owned: Collection[str]) -> PreparedMig:
        with Nvml.open(self.hardware) as nvml:
            return mig_prepare.prepare(nvml, name, owned=owned)

    def unprepare(self, prepared: PreparedMig) -> bool:
        with Nvml.open(self.hardware) as nvml:
            return mig_prepare.unprepare(nvml, prepared)

    def prepare_all(
        self, names: Sequence[str], owned: Collection[str]
    ) -> Mapping[str, PreparedMig]:
        """Create every device of one claim, all or none (created ones destroyed on failure)."""
        done: dict[str, PreparedMig] = {}
        try:
            for name in names:
                done[name] = self.prepare(name, [*owned, *(p.uuid for p in done.values())])
        except mig_prepare.MigPrepareError:
            for prepared in done.values():
                self.unprepare(prepared)
            raise
        return done


@dataclass(frozen=True)
class KnownDevices:
    """The device names a claim of this node may name (``claims.our_results``): the full GPUs
    and, with dynamic MIG, every MIG device name of a MIG-enabled GPU."""

    gpus: Collection[str]
    mig: MigNode | None = None

    def __contains__(self, name: object) -> bool:
        if name in self.gpus:
            return True
        return self.mig is not None and isinstance(name, str) and self.mig.owns(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.gpus)

    def __len__(self) -> int:
        return len(self.gpus)
