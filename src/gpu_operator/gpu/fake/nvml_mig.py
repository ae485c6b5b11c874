"""MIG functions of the simulated NVML, with pynvml's calling conventions.

The placement and instance-list calls follow the C API as pynvml exposes it: the caller
allocates the array and passes ``byref(count)``; a ``None`` array asks only for the count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pynvml

from gpu_operator.gpu import naming
from gpu_operator.gpu.fake import handles, partitioning
from gpu_operator.gpu.fake.catalogue import ci_profiles_for
from gpu_operator.gpu.fake.nvml import MIB, FakeNvmlBase, err
from gpu_operator.gpu.fake.state import Doc, model_of


def _deref(ref: Any) -> Any:
    """The object behind ``byref(x)``, ``pointer(x)`` or ``x`` itself."""
    if ref is None:
        return None
    if type(ref).__name__ == "CArgObject":
        return ref._obj
    if hasattr(ref, "contents") and not hasattr(ref, "_length_"):
        return ref.contents
    return ref


def _fill(array_ref: Any, count_ref: Any, items: list[Any]) -> None:
    count = _deref(count_ref)
    array = _deref(array_ref)
    if array is None:
        count.value = len(items)
        return
    if count.value < len(items) or len(array) < len(items):
        count.value = len(items)
        raise err(pynvml.NVML_ERROR_INSUFFICIENT_SIZE)
    for i, item in enumerate(items):
        array[i] = item
    count.value = len(items)


# Driver 580 knows GI profile enums 0..0x10; newer bindings also define 0x11 (3_SLICE_GFX),
# which the real H200 answered with INVALID_ARGUMENT, like any enum past the driver's count.
DRIVER_GI_PROFILE_COUNT = 0x11


class FakeNvmlMig(FakeNvmlBase):
    """GPU instances, compute instances and MIG devices."""

    @contextlib.contextmanager
    def _mutating(self, handle: Any, kind: int = handles.DEVICE) -> Iterator[tuple[Doc, Doc]]:
        decoded = handles.decode(handle)
        if decoded.kind != kind:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._doc()
        with self._store.update() as doc:
            gpu = self._gpu_doc(doc, decoded.gpu)
            yield doc, gpu

    def _gi_handle(self, gi_handle: Any) -> tuple[Doc, Doc, Doc]:
        decoded = handles.decode(gi_handle)
        if decoded.kind != handles.GPU_INSTANCE:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        doc = self._doc()
        gpu = self._gpu_doc(doc, decoded.gpu)
        return doc, gpu, partitioning.find_gi(gpu, decoded.gi)

    # --- mode ----------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, device: Any) -> list[int]:
        _, gpu, model = self._full(device)
        if not model.mig_capable:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [int(gpu["migCurrent"]), int(gpu["migPending"])]

    def nvmlDeviceSetMigMode(self, device: Any, mode: int) -> int:
        with self._mutating(device) as (_, gpu):
            return partitioning.set_mig_mode(model_of(gpu), gpu, int(mode))

    # --- GPU-instance profiles -----------------------------------------------------------

    def nvmlDeviceGetGpuInstanceProfileInfo(
        self, device: Any, profile: int, version: int = 2
    ) -> Any:
        _, _gpu, model = self._full(device)
        if not 0 <= profile < DRIVER_GI_PROFILE_COUNT:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        spec = next((p for p in model.gi_profiles if p.nvml_profile == profile), None)
        if spec is None:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if version == 2:
            info = pynvml.c_nvmlGpuInstanceProfileInfo_v2_t()
            name = naming.gi_profile_name(
                spec.nvml_profile, spec.slices, spec.memory_mib, model.memory_mib * MIB
            )
            info.name = f"MIG {name}".encode()
        elif version == 1:
            info = pynvml.c_nvmlGpuInstanceProfileInfo_t()
        else:
            raise err(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        info.id = spec.id
        info.isP2pSupported = 0
        info.sliceCount = spec.slices
        info.instanceCount = spec.instances
        info.multiprocessorCount = spec.sms
        info.copyEngineCount = spec.copy_engines
        info.decoderCount = spec.decoders
        info.encoderCount = spec.encoders
        info.jpegCount = spec.jpegs
        info.ofaCount = spec.ofas
        info.memorySizeMB = spec.memory_mib
        return info

    def nvmlDeviceGetGpuInstanceProfileInfoV(
        self, device: Any, profile: int, version: int = 2
    ) -> Any:
        return self.nvmlDeviceGetGpuInstanceProfileInfo(device, profile, version)

    def nvmlDeviceGetGpuInstancePossiblePlacements(
        self, device: Any, profileId: int, placementsRef: Any, countRef: Any
    ) -> int:
        _, _gpu, model = self._full(device)
        spec = partitioning.gi_profile_by_id(model, int(profileId))
        items = []
        for start in spec.starts:
            p = pynvml.c_nvmlGpuInstancePlacement_t()
            p.start, p.size = start, spec.size
            items.append(p)
        _fill(placementsRef, countRef, items)
        return pynvml.NVML_SUCCESS

    def nvmlDeviceGetGpuInstanceRemainingCapacity(self, device: Any, profileId: int) -> int:
        _, gpu, model = self._full(device)
        return partitioning.remaining_gi_capacity(model, gpu, int(profileId))

    # --- GPU instances -------------------------------------------------------------------

    def nvmlDeviceCreateGpuInstance(self, device: Any, profileId: int) -> Any:
        with self._mutating(device) as (_, gpu):
            gi = partitioning.create_gi(model_of(gpu), gpu, int(profileId), None)
            return handles.make(handles.GPU_INSTANCE, gpu["index"], gi["id"])

    def nvmlDeviceCreateGpuInstanceWithPlacement(
        self, device: Any, profileId: int, placement: Any
    ) -> Any:
        wanted = _deref(placement)
        with self._mutating(device) as (_, gpu):
            model = model_of(gpu)
            spec = partitioning.gi_profile_by_id(model, int(profileId))
            if int(wanted.size) != spec.size:
                raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            gi = partitioning.create_gi(model, gpu, int(profileId), int(wanted.start))
            return handles.make(handles.GPU_INSTANCE, gpu["index"], gi["id"])

    def nvmlDeviceGetGpuInstances(
        self, device: Any, profileId: int, gpuInstancesRef: Any, countRef: Any
    ) -> int:
        _, gpu, model = self._full(device)
        partitioning.gi_profile_by_id(model, int(profileId))
        partitioning.require_mig_enabled(gpu)
        items = [
            handles.make(handles.GPU_INSTANCE, gpu["index"], gi["id"])
            for gi in gpu["gpuInstances"]
            if gi["profileId"] == int(profileId)
        ]
        _fill(gpuInstancesRef, countRef, items)
        return pynvml.NVML_SUCCESS

    def nvmlDeviceGetGpuInstanceById(self, device: Any, gpuInstanceId: int) -> Any:
        _, gpu, _ = self._full(device)
        partitioning.require_mig_enabled(gpu)
        gi = partitioning.find_gi(gpu, int(gpuInstanceId))
        return handles.make(handles.GPU_INSTANCE, gpu["index"], gi["id"])

    def nvmlGpuInstanceGetInfo(self, gpuInstance: Any) -> Any:
        _, gpu, gi = self._gi_handle(gpuInstance)
        info = pynvml.c_nvmlGpuInstanceInfo_t()
        info.device = handles.make(handles.DEVICE, gpu["index"])
        info.id = gi["id"]
        info.profileId = gi["profileId"]
        info.placement.start = gi["start"]
        info.placement.size = gi["size"]
        return info

    def nvmlGpuInstanceDestroy(self, gpuInstance: Any) -> int:
        decoded = handles.decode(gpuInstance)
        with self._mutating(handles.make(handles.DEVICE, decoded.gpu)) as (_, gpu):
            if decoded.kind != handles.GPU_INSTANCE:
                raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            partitioning.destroy_gi(gpu, decoded.gi)
        return pynvml.NVML_SUCCESS

    # --- compute instances ---------------------------------------------------------------

    def nvmlGpuInstanceGetComputeInstanceProfileInfo(
        self, device: Any, profile: int, engProfile: int, version: int = 2
    ) -> Any:
        _, gpu, gi = self._gi_handle(device)
        model = model_of(gpu)
        if not 0 <= profile < pynvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gi_spec = partitioning.gi_profile_by_id(model, gi["profileId"])
        spec = next((c for c in ci_profiles_for(model, gi_spec) if c.id == profile), None)
        if spec is None or engProfile != pynvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if version == 2:
            info = pynvml.c_nvmlComputeInstanceProfileInfo_v2_t()
            gi_name = naming.gi_profile_name(
                gi_spec.nvml_profile, gi_spec.slices, gi_spec.memory_mib, model.memory_mib * MIB
            )
            info.name = (
                f"MIG {naming.ci_profile_name(spec.slices, gi_spec.slices, gi_name)}".encode()
            )
        elif version == 1:
            info = pynvml.c_nvmlComputeInstanceProfileInfo_t()
        else:
            raise err(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        info.id = spec.id
        info.sliceCount = spec.slices
        info.instanceCount = spec.instances
        info.multiprocessorCount = spec.sms
        info.sharedCopyEngineCount = gi_spec.copy_engines
        info.sharedDecoderCount = gi_spec.decoders
        info.sharedEncoderCount = gi_spec.encoders
        info.sharedJpegCount = gi_spec.jpegs
        info.sharedOfaCount = gi_spec.ofas
        return info

    def nvmlGpuInstanceGetComputeInstanceProfileInfoV(
        self, device: Any, profile: int, engProfile: int, version: int = 2
    ) -> Any:
        return self.nvmlGpuInstanceGetComputeInstanceProfileInfo(
            device, profile, engProfile, version
        )

    def nvmlGpuInstanceGetComputeInstancePossiblePlacements(
        self, gpuInstance: Any, profileId: int, placementsRef: Any, countRef: Any
    ) -> int:
        _, gpu, gi = self._gi_handle(gpuInstance)
        model = model_of(gpu)
        gi_spec = partitioning.gi_profile_by_id(model, gi["profileId"])
        spec = partitioning.ci_profile_by_id(model, gi_spec, int(profileId))
        items = []
        for start in spec.starts:
            p = pynvml.c_nvmlComputeInstancePlacement_t()
            p.start, p.size = start, spec.slices
            items.append(p)
        _fill(placementsRef, countRef, items)
        return pynvml.NVML_SUCCESS

    def nvmlGpuInstanceGetComputeInstanceRemainingCapacity(
        self, gpuInstance: Any, profileId: int
    ) -> int:
        _, gpu, gi = self._gi_handle(gpuInstance)
        return partitioning.remaining_ci_capacity(model_of(gpu), gi, int(profileId))

    def _create_ci(self, gpu_instance: Any, profile_id: int, start: int | None) -> Any:
        decoded = handles.decode(gpu_instance)
        if decoded.kind != handles.GPU_INSTANCE:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        with self._mutating(handles.make(handles.DEVICE, decoded.gpu)) as (_, gpu):
            gi = partitioning.find_gi(gpu, decoded.gi)
            ci = partitioning.create_ci(model_of(gpu), gpu, gi, int(profile_id), start)
            return handles.make(handles.COMPUTE_INSTANCE, gpu["index"], gi["id"], ci["id"])

    def nvmlGpuInstanceCreateComputeInstance(self, gpuInstance: Any, profileId: int) -> Any:
        return self._create_ci(gpuInstance, profileId, None)

    def nvmlGpuInstanceCreateComputeInstanceWithPlacement(
        self, gpuInstance: Any, profileId: int, placement: Any
    ) -> Any:
        return self._create_ci(gpuInstance, profileId, int(_deref(placement).start))

    def nvmlGpuInstanceGetComputeInstances(
        self, gpuInstance: Any, profileId: int, computeInstancesRef: Any, countRef: Any
    ) -> int:
        _, gpu, gi = self._gi_handle(gpuInstance)
        items = [
            handles.make(handles.COMPUTE_INSTANCE, gpu["index"], gi["id"], ci["id"])
            for ci in gi["computeInstances"]
            if ci["profileId"] == int(profileId)
        ]
        _fill(computeInstancesRef, countRef, items)
        return pynvml.NVML_SUCCESS

    def nvmlGpuInstanceGetComputeInstanceById(
        self, gpuInstance: Any, computeInstanceId: int
    ) -> Any:
        _, gpu, gi = self._gi_handle(gpuInstance)
        ci = partitioning.find_ci(gi, int(computeInstanceId))
        return handles.make(handles.COMPUTE_INSTANCE, gpu["index"], gi["id"], ci["id"])

    def nvmlComputeInstanceGetInfo_v2(self, computeInstance: Any) -> Any:
        decoded = handles.decode(computeInstance)
        if decoded.kind != handles.COMPUTE_INSTANCE:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = self._gpu_doc(self._doc(), decoded.gpu)
        gi = partitioning.find_gi(gpu, decoded.gi)
        ci = partitioning.find_ci(gi, decoded.ci)
        info = pynvml.c_nvmlComputeInstanceInfo_t()
        info.device = handles.make(handles.DEVICE, decoded.gpu)
        info.gpuInstance = handles.make(handles.GPU_INSTANCE, decoded.gpu, gi["id"])
        info.id = ci["id"]
        info.profileId = ci["profileId"]
        info.placement.start = ci["start"]
        info.placement.size = ci["size"]
        return info

    def nvmlComputeInstanceGetInfo(self, computeInstance: Any) -> Any:
        return self.nvmlComputeInstanceGetInfo_v2(computeInstance)

    def nvmlComputeInstanceDestroy(self, computeInstance: Any) -> int:
        decoded = handles.decode(computeInstance)
        if decoded.kind != handles.COMPUTE_INSTANCE:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        with self._mutating(handles.make(handles.DEVICE, decoded.gpu)) as (_, gpu):
            gi = partitioning.find_gi(gpu, decoded.gi)
            partitioning.destroy_ci(gpu, gi, decoded.ci)
        return pynvml.NVML_SUCCESS

    # --- MIG devices ---------------------------------------------------------------------

    def nvmlDeviceGetMaxMigDeviceCount(self, device: Any) -> int:
        _, gpu, model = self._full(device)
        if not model.mig_capable or gpu["migCurrent"] != pynvml.NVML_DEVICE_MIG_ENABLE:
            return 0
        return model.compute_slices

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: Any, index: int) -> Any:
        _, gpu, _model = self._full(device)
        if not 0 <= index < self.nvmlDeviceGetMaxMigDeviceCount(device):
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        for gi, ci in partitioning.mig_devices(gpu):
            if ci["migIndex"] == index:
                return handles.make(handles.MIG_DEVICE, gpu["index"], gi["id"], ci["id"])
        raise err(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceIsMigDeviceHandle(self, device: Any) -> Any:
        # pynvml returns the c_uint itself, not its value: callers must read ``.value``.
        self._resolve(device)
        import ctypes

        return ctypes.c_uint(1 if handles.decode(device).kind == handles.MIG_DEVICE else 0)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: Any) -> Any:
        _, gpu, mig = self._resolve(migDevice)
        if mig is None:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return handles.make(handles.DEVICE, gpu["index"])

    def nvmlDeviceGetGpuInstanceId(self, device: Any) -> int:
        _, _, mig = self._resolve(device)
        if mig is None:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(mig["gi"]["id"])

    def nvmlDeviceGetComputeInstanceId(self, device: Any) -> int:
        _, _, mig = self._resolve(device)
        if mig is None:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(mig["ci"]["id"])
