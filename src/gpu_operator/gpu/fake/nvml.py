"""A stand-in for the ``pynvml`` module, backed by a simulated node's shared state.

``FakeNvml`` has the functions the facade calls, with pynvml's names, signatures and return
types (ctypes structs, lists, ints), and pynvml's own constants, structs and ``NVMLError_*``
classes (attribute lookups fall through to pynvml), so ``gpu_operator.gpu`` runs unchanged on it.
Device-level functions live here; MIG functions in ``nvml_mig.py``; counters in
``nvml_telemetry.py``; events and topology in ``nvml_events.py``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import pynvml

from gpu_operator.gpu import naming
from gpu_operator.gpu.fake import handles
from gpu_operator.gpu.fake.catalogue import ModelSpec
from gpu_operator.gpu.fake.partitioning import find_ci, find_gi, gi_profile_by_id
from gpu_operator.gpu.fake.state import Doc, StateStore, model_of, stable_uuid

MIB = 2**20
NOT_AVAILABLE = 0xFFFFFFFF


def err(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


class FakeNvmlBase:
    """Session, handle resolution and the static device queries."""

    def __init__(self, store: StateStore, *, clock: Callable[[], float] = time.time):
        self._store = store
        self._clock = clock
        self._init_count = 0

    def __getattr__(self, name: str) -> Any:
        # Constants, ctypes structs and NVMLError_* classes are pynvml's own objects.
        value = getattr(pynvml, name)
        if inspect.isfunction(value) and name.startswith("nvml"):
            raise AttributeError(f"the simulated NVML does not implement {name}")
        return value

    # --- session -------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self._store.read()
        self._init_count += 1

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.nvmlInit()

    def nvmlShutdown(self) -> None:
        if self._init_count == 0:
            raise err(pynvml.NVML_ERROR_UNINITIALIZED)
        self._init_count -= 1

    def _doc(self) -> Doc:
        if self._init_count == 0:
            raise err(pynvml.NVML_ERROR_UNINITIALIZED)
        return self._store.read()

    def _now(self, doc: Doc) -> float:
        """Seconds since the simulated node booted."""
        return max(0.0, self._clock() - float(doc["bootTime"]))

    # --- handle resolution ---------------------------------------------------------------

    def _gpu_doc(self, doc: Doc, index: int) -> Doc:
        gpus: list[Doc] = doc["gpus"]
        if not 0 <= index < len(gpus):
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = gpus[index]
        if gpu["lost"]:
            raise err(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _resolve(self, handle: Any, *, mig_ok: bool = True) -> tuple[Doc, Doc, Doc | None]:
        """(state, gpu, mig) for a device or MIG device handle; ``mig`` is (gi, ci) merged."""
        decoded = handles.decode(handle)
        if decoded.kind not in (handles.DEVICE, handles.MIG_DEVICE):
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        doc = self._doc()
        gpu = self._gpu_doc(doc, decoded.gpu)
        if decoded.kind == handles.DEVICE:
            return doc, gpu, None
        if not mig_ok:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        gi = find_gi(gpu, decoded.gi)
        ci = find_ci(gi, decoded.ci)
        return doc, gpu, {"gi": gi, "ci": ci}

    def _full(self, handle: Any) -> tuple[Doc, Doc, ModelSpec]:
        """A full-GPU handle; device-level queries on a MIG handle are NOT_SUPPORTED, as on
        real drivers."""
        doc, gpu, _ = self._resolve(handle, mig_ok=False)
        return doc, gpu, model_of(gpu)

    # --- system --------------------------------------------------------------------------

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self._doc()["driverVersion"])

    def nvmlSystemGetNVMLVersion(self) -> str:
        return str(self._doc()["nvmlVersion"])

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return int(self._doc()["cudaDriverVersion"])

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.nvmlSystemGetCudaDriverVersion()

    # --- devices -------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        return len(self._doc()["gpus"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self._gpu_doc(self._doc(), int(index))
        return handles.make(handles.DEVICE, int(index))

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        doc, gpu, mig = self._resolve(handle)
        if mig is None:
            return str(gpu["uuid"])
        gi, ci = mig["gi"], mig["ci"]
        return "MIG-" + stable_uuid(doc["seed"], gpu["uuid"], gi["id"], ci["id"], ci["generation"])

    def nvmlDeviceGetName(self, handle: Any) -> str:
        _, gpu, mig = self._resolve(handle)
        model = model_of(gpu)
        if mig is None:
            return model.name
        return f"{model.name} MIG {self._mig_profile_name(model, mig['gi'], mig['ci'])}"

    def _mig_profile_name(self, model: ModelSpec, gi: Doc, ci: Doc) -> str:
        profile = gi_profile_by_id(model, gi["profileId"])
        gi_name = naming.gi_profile_name(
            profile.nvml_profile, profile.slices, profile.memory_mib, model.memory_mib * MIB
        )
        return naming.ci_profile_name(ci["size"], profile.slices, gi_name)

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        _, gpu, model = self._full(handle)
        info = pynvml.nvmlPciInfo_t()
        bus_id = str(gpu["busId"])
        domain, bus, rest = bus_id.split(":")
        info.busId = bus_id.encode()
        info.busIdLegacy = bus_id[4:].encode()
        info.domain = int(domain, 16)
        info.bus = int(bus, 16)
        info.device = int(rest.split(".")[0], 16)
        info.pciDeviceId = model.pci_device_id
        info.pciSubSystemId = model.pci_subsystem_id
        return info

    def nvmlDeviceGetPciInfoExt(self, handle: Any, c_info: Any) -> None:
        """PCI facts with the device class: every catalogue model is a 3D controller (0x0302)."""
        basic = self.nvmlDeviceGetPciInfo(handle)
        info = c_info._obj if type(c_info).__name__ == "CArgObject" else c_info
        for name in ("domain", "bus", "device", "pciDeviceId", "pciSubSystemId", "busId"):
            setattr(info, name, getattr(basic, name) if name != "busId" else basic.busId.encode())
        info.baseClass, info.subClass = 0x03, 0x02

    def nvmlDeviceGetPciInfo_v3(self, handle: Any) -> Any:
        return self.nvmlDeviceGetPciInfo(handle)

    def nvmlDeviceGetMinorNumber(self, handle: Any) -> int:
        _, gpu, _ = self._full(handle)
        return int(gpu["minor"])

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        _, gpu, _mig = self._resolve(handle)
        return model_of(gpu).compute_capability

    def nvmlDeviceGetArchitecture(self, handle: Any) -> int:
        _, _, model = self._full(handle)
        return model.architecture

    def nvmlDeviceGetBrand(self, handle: Any) -> int:
        _, _, model = self._full(handle)
        return model.brand

    def nvmlDeviceGetSerial(self, handle: Any) -> str:
        _, gpu, _ = self._full(handle)
        return str(gpu["serial"])

    def nvmlDeviceGetVbiosVersion(self, handle: Any) -> str:
        _, _, model = self._full(handle)
        return model.vbios

    def nvmlDeviceGetNumaNodeId(self, handle: Any) -> int:
        _, gpu, _ = self._full(handle)
        numa = gpu.get("numaNode")
        if numa is None:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(numa)

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any:
        _, gpu, mig = self._resolve(handle)
        model = model_of(gpu)
        if mig is None:
            total = model.memory_mib * MIB
            reserved = model.reserved_memory_bytes()
            procs = gpu["processes"]
        else:
            total = gi_profile_by_id(model, mig["gi"]["profileId"]).memory_mib * MIB
            reserved = 0
            procs = [p for p in gpu["processes"] if p.get("gi") == mig["gi"]["id"]]
        used = sum(int(p["usedMemoryMiB"]) * MIB for p in procs)
        free = max(total - reserved - used, 0)
        if not version:
            # v1, as the cards answer it: the reserved memory counts as used (615 MiB "used" on
            # an idle H200), free + used = total.
            mem = pynvml.c_nvmlMemory_t()
            mem.total, mem.used, mem.free = total, reserved + used, free
            return mem
        # v2: reserved apart; used is what processes hold (0 at idle), free + used + reserved
        # = total (nvidia-smi's "0MiB / 143771MiB" on an idle H200).
        mem2 = pynvml.c_nvmlMemory_v2_t()
        mem2.version = version
        mem2.total, mem2.reserved, mem2.used, mem2.free = total, reserved, used, free
        return mem2

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        _, gpu, mig = self._resolve(handle)
        procs = gpu["processes"]
        if mig is not None:
            procs = [
                p
                for p in procs
                if p.get("gi") == mig["gi"]["id"] and p.get("ci") == mig["ci"]["id"]
            ]
        out = []
        for p in procs:
            info = pynvml.c_nvmlProcessInfo_t()
            info.pid = int(p["pid"])
            info.usedGpuMemory = int(p["usedMemoryMiB"]) * MIB
            info.gpuInstanceId = NOT_AVAILABLE if p.get("gi") is None else int(p["gi"])
            info.computeInstanceId = NOT_AVAILABLE if p.get("ci") is None else int(p["ci"])
            out.append(pynvml.nvmlStructToFriendlyObject(info))
        return out

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: Any) -> list[Any]:
        return self.nvmlDeviceGetComputeRunningProcesses(handle)
