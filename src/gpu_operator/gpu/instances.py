"""The MIG part of the NVML facade: profiles, placements, GPU and compute instances, MIG
devices, and the mutating calls.

Profile ids are always read from the device (they differ between models, e.g. A30), and names
are derived from NVML's numbers (``naming.py``), never from a table. pynvml's quirks are
handled here: placement and instance arrays are caller-allocated (size first with a ``None``
array), ``nvmlDeviceIsMigDeviceHandle`` returns a ctypes value, profile info uses the v2 structs.
"""

from __future__ import annotations

import ctypes
from typing import Any

from gpu_operator.errors import GpuError
from gpu_operator.gpu import naming
from gpu_operator.gpu.records import (
    ComputeInstance,
    ComputeInstanceProfile,
    GpuInstance,
    GpuInstanceProfile,
    MigDevice,
    MigMode,
    Placement,
)
from gpu_operator.gpu.session import NvmlSession, text


class NvmlMig(NvmlSession):
    """MIG queries and mutations over an open session."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._memory_total: dict[int, int] = {}
        self._gi_profiles: dict[int, list[GpuInstanceProfile]] = {}

    def memory_total_bytes(self, index: int) -> int:
        if index not in self._memory_total:
            info = self._call(
                "nvmlDeviceGetMemoryInfo",
                self._nvml.nvmlDeviceGetMemoryInfo,
                self.handle(index),
                gpu=index,
            )
            self._memory_total[index] = int(info.total)
        return self._memory_total[index]

    def _sized_array(self, what: str, fn: Any, item_type: Any, *args: Any, gpu: int) -> list[Any]:
        """Call an NVML "fill my array" function twice: once for the count, once for the items."""
        count = ctypes.c_uint(0)
        self._call(what, fn, *args, None, ctypes.byref(count), gpu=gpu)
        if count.value == 0:
            return []
        array = (item_type * count.value)()
        self._call(what, fn, *args, array, ctypes.byref(count), gpu=gpu)
        return list(array[: count.value])

    # --- profiles ------------------------------------------------------------------------

    def gi_profiles(self, index: int) -> list[GpuInstanceProfile]:
        """Every GPU-instance profile this GPU supports (readable whatever the MIG mode)."""
        if index in self._gi_profiles:
            return self._gi_profiles[index]
        n, h = self._nvml, self.handle(index)
        if self.mig_mode(index) is None:
            return []
        total = self.memory_total_bytes(index)
        profiles = []
        for enum in range(n.NVML_GPU_INSTANCE_PROFILE_COUNT):
            info = self._optional(n.nvmlDeviceGetGpuInstanceProfileInfo, h, enum, 2)
            if info is None:
                continue
            placements = self._sized_array(
                "nvmlDeviceGetGpuInstancePossiblePlacements",
                n.nvmlDeviceGetGpuInstancePossiblePlacements,
                n.c_nvmlGpuInstancePlacement_t,
                h,
                int(info.id),
                gpu=index,
            )
            profiles.append(
                GpuInstanceProfile(
                    nvml_profile=enum,
                    id=int(info.id),
                    name=naming.gi_profile_name(
                        enum, int(info.sliceCount), int(info.memorySizeMB), total
                    ),
                    slice_count=int(info.sliceCount),
                    instance_count=int(info.instanceCount),
                    memory_mib=int(info.memorySizeMB),
                    multiprocessors=int(info.multiprocessorCount),
                    copy_engines=int(info.copyEngineCount),
                    decoders=int(info.decoderCount),
                    encoders=int(info.encoderCount),
                    jpegs=int(info.jpegCount),
                    ofas=int(info.ofaCount),
                    placements=tuple(Placement(int(p.start), int(p.size)) for p in placements),
                )
            )
        # nvidia-smi's order (mig -lgip): by compute slices, then memory, then NVML enum.
        profiles.sort(key=lambda p: (p.slice_count, p.memory_mib, p.nvml_profile))
        self._gi_profiles[index] = profiles
        return profiles

    def gi_profile(self, index: int, profile_id: int) -> GpuInstanceProfile:
        for profile in self.gi_profiles(index):
            if profile.id == profile_id:
                return profile
        raise GpuError(f"GPU {index}: no GPU-instance profile with id {profile_id}")

    def _gi_handle(self, index: int, gi_id: int) -> Any:
        return self._call(
            f"nvmlDeviceGetGpuInstanceById({gi_id})",
            self._nvml.nvmlDeviceGetGpuInstanceById,
            self.handle(index),
            gi_id,
            gpu=index,
        )

    def ci_profiles(self, index: int, gpu_instance_id: int) -> list[ComputeInstanceProfile]:
        """Compute-instance profiles available inside an existing GPU instance."""
        n = self._nvml
        gi_handle = self._gi_handle(index, gpu_instance_id)
        gi_info = self._call(
            "nvmlGpuInstanceGetInfo", n.nvmlGpuInstanceGetInfo, gi_handle, gpu=index
        )
        return self._ci_profiles(index, gi_handle, self.gi_profile(index, int(gi_info.profileId)))

    def _ci_profiles(
        self, index: int, gi_handle: Any, gi_profile: GpuInstanceProfile
    ) -> list[ComputeInstanceProfile]:
        n = self._nvml
        out = []
        for enum in range(n.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
            info = self._optional(
                n.nvmlGpuInstanceGetComputeInstanceProfileInfo,
                gi_handle,
                enum,
                n.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED,
                2,
            )
            if info is None:
                continue
            placements = self._sized_array(
                "nvmlGpuInstanceGetComputeInstancePossiblePlacements",
                n.nvmlGpuInstanceGetComputeInstancePossiblePlacements,
                n.c_nvmlComputeInstancePlacement_t,
                gi_handle,
                int(info.id),
                gpu=index,
            )
            out.append(
                ComputeInstanceProfile(
                    nvml_profile=enum,
                    id=int(info.id),
                    name=naming.ci_profile_name(
                        int(info.sliceCount), gi_profile.slice_count, gi_profile.name
                    ),
                    slice_count=int(info.sliceCount),
                    instance_count=int(info.instanceCount),
                    multiprocessors=int(info.multiprocessorCount),
                    placements=tuple(Placement(int(p.start), int(p.size)) for p in placements),
                )
            )
        return out

    # --- existing instances --------------------------------------------------------------

    def gpu_instances(self, index: int) -> list[GpuInstance]:
        """The GPU instances that exist now, each with its compute instances, by GI id."""
        mode = self.mig_mode(index)
        if mode is None or not mode.enabled:
            return []
        n, h = self._nvml, self.handle(index)
        found = []
        for profile in self.gi_profiles(index):
            count = ctypes.c_uint(profile.instance_count)
            array = (n.c_nvmlGpuInstance_t * profile.instance_count)()
            self._call(
                "nvmlDeviceGetGpuInstances",
                n.nvmlDeviceGetGpuInstances,
                h,
                profile.id,
                array,
                ctypes.byref(count),
                gpu=index,
            )
            for gi_handle in array[: count.value]:
                info = self._call(
                    "nvmlGpuInstanceGetInfo", n.nvmlGpuInstanceGetInfo, gi_handle, gpu=index
                )
                found.append(
                    GpuInstance(
                        gpu_index=index,
                        id=int(info.id),
                        profile_id=profile.id,
                        profile_name=profile.name,
                        placement=Placement(int(info.placement.start), int(info.placement.size)),
                        compute_instances=tuple(
                            self._compute_instances(index, gi_handle, int(info.id), profile)
                        ),
                    )
                )
        return sorted(found, key=lambda gi: gi.id)

    def _compute_instances(
        self, index: int, gi_handle: Any, gi_id: int, gi_profile: GpuInstanceProfile
    ) -> list[ComputeInstance]:
        n = self._nvml
        out = []
        for ci_profile in self._ci_profiles(index, gi_handle, gi_profile):
            count = ctypes.c_uint(ci_profile.instance_count)
            array = (n.c_nvmlComputeInstance_t * ci_profile.instance_count)()
            self._call(
                "nvmlGpuInstanceGetComputeInstances",
                n.nvmlGpuInstanceGetComputeInstances,
                gi_handle,
                ci_profile.id,
                array,
                ctypes.byref(count),
                gpu=index,
            )
            for ci_handle in array[: count.value]:
                info = self._call(
                    "nvmlComputeInstanceGetInfo", n.nvmlComputeInstanceGetInfo, ci_handle, gpu=index
                )
                out.append(
                    ComputeInstance(
                        gpu_instance_id=gi_id,
                        id=int(info.id),
                        profile_id=ci_profile.id,
                        name=ci_profile.name,
                        placement=Placement(int(info.placement.start), int(info.placement.size)),
                        multiprocessors=ci_profile.multiprocessors,
                    )
                )
        return sorted(out, key=lambda ci: ci.id)

    def mig_devices(self, index: int) -> list[MigDevice]:
        """MIG devices of a GPU, skipping the ``NotFound`` holes that destroyed instances leave."""
        n, h = self._nvml, self.handle(index)
        mode = self.mig_mode(index)
        if mode is None or not mode.enabled:
            return []
        instances = {gi.id: gi for gi in self.gpu_instances(index)}
        parent_uuid = text(self._call("nvmlDeviceGetUUID", n.nvmlDeviceGetUUID, h, gpu=index))
        max_count = int(
            self._call(
                "nvmlDeviceGetMaxMigDeviceCount", n.nvmlDeviceGetMaxMigDeviceCount, h, gpu=index
            )
        )
        devices = []
        for slot in range(max_count):
            try:
                mig = n.nvmlDeviceGetMigDeviceHandleByIndex(h, slot)
            except n.NVMLError as error:
                if error.value == n.NVML_ERROR_NOT_FOUND:
                    continue
                raise self._wrap(
                    error, f"nvmlDeviceGetMigDeviceHandleByIndex({slot})", index
                ) from error
            if not self._call(
                "nvmlDeviceIsMigDeviceHandle", n.nvmlDeviceIsMigDeviceHandle, mig, gpu=index
            ).value:
                continue
            gi_id = int(
                self._call(
                    "nvmlDeviceGetGpuInstanceId", n.nvmlDeviceGetGpuInstanceId, mig, gpu=index
                )
            )
            ci_id = int(
                self._call(
                    "nvmlDeviceGetComputeInstanceId",
                    n.nvmlDeviceGetComputeInstanceId,
                    mig,
                    gpu=index,
                )
            )
            gi = instances.get(gi_id)
            ci = next((c for c in gi.compute_instances if c.id == ci_id), None) if gi else None
            if gi is None or ci is None:
                continue  # destroyed between the two reads
            memory = self._call(
                "nvmlDeviceGetMemoryInfo", n.nvmlDeviceGetMemoryInfo, mig, gpu=index
            )
            devices.append(
                MigDevice(
                    uuid=text(self._call("nvmlDeviceGetUUID", n.nvmlDeviceGetUUID, mig, gpu=index)),
                    parent_index=index,
                    parent_uuid=parent_uuid,
                    index=slot,
                    gpu_instance_id=gi_id,
                    compute_instance_id=ci_id,
                    profile=ci.name,
                    gi_profile_id=gi.profile_id,
                    placement=gi.placement,
                    memory_total_bytes=int(memory.total),
                    multiprocessors=ci.multiprocessors,
                )
            )
        return devices

    def remaining_capacity(self, index: int, profile_id: int) -> int:
        return int(
            self._call(
                "nvmlDeviceGetGpuInstanceRemainingCapacity",
                self._nvml.nvmlDeviceGetGpuInstanceRemainingCapacity,
                self.handle(index),
                profile_id,
                gpu=index,
            )
        )

    # --- mutations -----------------------------------------------------------------------

    def set_mig_mode(self, index: int, enabled: bool) -> tuple[MigMode, str | None]:
        """Request a MIG mode; returns the mode now and the activation status when it did not
        take effect (e.g. ``NVMLError_InUse``, ``NVMLError_ResetRequired``)."""
        n = self._nvml
        wanted = n.NVML_DEVICE_MIG_ENABLE if enabled else n.NVML_DEVICE_MIG_DISABLE
        status = self._call(
            "nvmlDeviceSetMigMode", n.nvmlDeviceSetMigMode, self.handle(index), wanted, gpu=index
        )
        # The driver may rebind the GPU after a mode change: drop what we cached about it.
        self._handles.pop(index, None)
        self._gi_profiles.pop(index, None)
        mode = self.mig_mode(index)
        assert mode is not None
        status_name = None if status == n.NVML_SUCCESS else type(n.NVMLError(status)).__name__
        return mode, status_name

    def create_gpu_instance(
        self, index: int, profile_id: int, start: int | None = None
    ) -> GpuInstance:
        """Create a GI, at ``start`` when given (always pass it: the driver's own choice
        fragments the GPU), and return it as read back from the driver."""
        n, h = self._nvml, self.handle(index)
        profile = self.gi_profile(index, profile_id)
        if start is None:
            gi_handle = self._call(
                f"nvmlDeviceCreateGpuInstance({profile.name})",
                n.nvmlDeviceCreateGpuInstance,
                h,
                profile_id,
                gpu=index,
            )
        else:
            placement = n.c_nvmlGpuInstancePlacement_t()
            placement.start, placement.size = start, profile.memory_slices
            gi_handle = self._call(
                f"nvmlDeviceCreateGpuInstanceWithPlacement({profile.name}, start {start})",
                n.nvmlDeviceCreateGpuInstanceWithPlacement,
                h,
                profile_id,
                ctypes.byref(placement),
                gpu=index,
            )
        info = self._call("nvmlGpuInstanceGetInfo", n.nvmlGpuInstanceGetInfo, gi_handle, gpu=index)
        return GpuInstance(
            index,
            int(info.id),
            profile_id,
            profile.name,
            Placement(int(info.placement.start), int(info.placement.size)),
        )

    def create_compute_instance(
        self,
        index: int,
        gpu_instance_id: int,
        ci_profile_id: int | None = None,
        start: int | None = None,
    ) -> ComputeInstance:
        """Create a CI in a GI; without ``ci_profile_id``, the full CI (all the GI's slices)."""
        n = self._nvml
        gi_handle = self._gi_handle(index, gpu_instance_id)
        gi_info = self._call(
            "nvmlGpuInstanceGetInfo", n.nvmlGpuInstanceGetInfo, gi_handle, gpu=index
        )
        gi_profile = self.gi_profile(index, int(gi_info.profileId))
        profiles = self._ci_profiles(index, gi_handle, gi_profile)
        if ci_profile_id is None:
            chosen = next((p for p in profiles if p.slice_count == gi_profile.slice_count), None)
        else:
            chosen = next((p for p in profiles if p.id == ci_profile_id), None)
        if chosen is None:
            raise GpuError(
                f"GPU {index}: GPU instance {gpu_instance_id} ({gi_profile.name}) has no "
                f"compute-instance profile {ci_profile_id}"
            )
        if start is None:
            ci_handle = self._call(
                f"nvmlGpuInstanceCreateComputeInstance({chosen.name})",
                n.nvmlGpuInstanceCreateComputeInstance,
                gi_handle,
                chosen.id,
                gpu=index,
            )
        else:
            placement = n.c_nvmlComputeInstancePlacement_t()
            placement.start, placement.size = start, chosen.slice_count
            ci_handle = self._call(
                f"nvmlGpuInstanceCreateComputeInstanceWithPlacement({chosen.name}, start {start})",
                n.nvmlGpuInstanceCreateComputeInstanceWithPlacement,
                gi_handle,
                chosen.id,
                ctypes.byref(placement),
                gpu=index,
            )
        info = self._call(
            "nvmlComputeInstanceGetInfo", n.nvmlComputeInstanceGetInfo, ci_handle, gpu=index
        )
        return ComputeInstance(
            gpu_instance_id,
            int(info.id),
            chosen.id,
            chosen.name,
            Placement(int(info.placement.start), int(info.placement.size)),
            chosen.multiprocessors,
        )

    def destroy_compute_instance(
        self, index: int, gpu_instance_id: int, compute_instance_id: int
    ) -> None:
        n = self._nvml
        gi_handle = self._gi_handle(index, gpu_instance_id)
        ci_handle = self._call(
            f"nvmlGpuInstanceGetComputeInstanceById({compute_instance_id})",
            n.nvmlGpuInstanceGetComputeInstanceById,
            gi_handle,
            compute_instance_id,
            gpu=index,
        )
        self._call(
            f"nvmlComputeInstanceDestroy(GI {gpu_instance_id}, CI {compute_instance_id})",
            n.nvmlComputeInstanceDestroy,
            ci_handle,
            gpu=index,
        )

    def destroy_gpu_instance(self, index: int, gpu_instance_id: int) -> None:
        gi_handle = self._gi_handle(index, gpu_instance_id)
        self._call(
            f"nvmlGpuInstanceDestroy(GI {gpu_instance_id})",
            self._nvml.nvmlGpuInstanceDestroy,
            gi_handle,
            gpu=index,
        )
