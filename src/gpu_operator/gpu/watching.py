"""XID and ECC events, GPU-lost detection and GPU-pair topology: the facade's last layer,
assembled into ``Nvml``, the class every operand uses."""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Iterable
from typing import Any

from gpu_operator.errors import GpuError
from gpu_operator.gpu.counters import NvmlCounters
from gpu_operator.gpu.records import EventKind, GpuEvent, ProcessInfo, Topology
from gpu_operator.gpu.session import Closing

_TOPOLOGY_NAMES = {
    0: "internal",
    10: "single",
    20: "multiple",
    30: "hostbridge",
    40: "node",
    50: "system",
}


def _address(handle: object) -> int:
    """An NVML handle's identity: the address it points at (handles are ctypes pointers)."""
    try:
        return int(ctypes.cast(handle, ctypes.c_void_p).value or 0)  # type: ignore[arg-type]
    except (ctypes.ArgumentError, TypeError):
        return 0


class EventWatcher(Closing):
    """A registration for XID (and optionally ECC) events on some GPUs; ``wait`` blocks."""

    def __init__(self, nvml: Nvml, indexes: Iterable[int], *, ecc: bool = False):
        n = nvml.nvml
        self._nvml = nvml
        self._set = nvml._call("nvmlEventSetCreate", n.nvmlEventSetCreate)
        self._uuid_by_index: dict[int, str] = {}
        self._index_by_handle: dict[int, int] = {}
        wanted = n.nvmlEventTypeXidCriticalError
        if ecc:
            wanted |= n.nvmlEventTypeSingleBitEccError | n.nvmlEventTypeDoubleBitEccError
        for index in indexes:
            handle = nvml.handle(index)
            supported = nvml._call(
                "nvmlDeviceGetSupportedEventTypes",
                n.nvmlDeviceGetSupportedEventTypes,
                handle,
                gpu=index,
            )
            nvml._call(
                "nvmlDeviceRegisterEvents",
                n.nvmlDeviceRegisterEvents,
                handle,
                wanted & supported,
                self._set,
                gpu=index,
            )
            self._uuid_by_index[index] = nvml.gpu(index).uuid
            self._index_by_handle[_address(handle)] = index
        self._index_by_uuid = {u: i for i, u in self._uuid_by_index.items()}

    def wait(self, timeout_ms: int) -> GpuEvent | None:
        """The next event, or ``None`` when ``timeout_ms`` passes without one."""
        n = self._nvml.nvml
        try:
            data = n.nvmlEventSetWait_v2(self._set, timeout_ms)
        except n.NVMLError as error:
            if error.value == n.NVML_ERROR_TIMEOUT:
                return None
            raise self._nvml._wrap(error, "nvmlEventSetWait") from error
        # The event carries the handle we registered: match it by address, because on the
        # event that matters most (XID 79, fallen off the bus) the GPU no longer answers NVML.
        index = self._index_by_handle.get(_address(data.device), -1)
        uuid = self._uuid_by_index.get(index, "")
        if index < 0:
            try:
                raw = n.nvmlDeviceGetUUID(data.device)
                uuid = raw.decode() if isinstance(raw, bytes) else str(raw)
            except n.NVMLError as error:
                if error.value != n.NVML_ERROR_GPU_IS_LOST:
                    raise self._nvml._wrap(error, "nvmlDeviceGetUUID") from error
            index = self._index_by_uuid.get(uuid, -1)
        kinds = {
            n.nvmlEventTypeXidCriticalError: EventKind.XID,
            n.nvmlEventTypeSingleBitEccError: EventKind.SINGLE_BIT_ECC,
            n.nvmlEventTypeDoubleBitEccError: EventKind.DOUBLE_BIT_ECC,
        }
        not_available = 0xFFFFFFFF
        return GpuEvent(
            gpu_index=index,
            gpu_uuid=uuid,
            kind=kinds.get(int(data.eventType), EventKind.OTHER),
            data=int(data.eventData),
            gpu_instance_id=None
            if data.gpuInstanceId == not_available
            else int(data.gpuInstanceId),
            compute_instance_id=None
            if data.computeInstanceId == not_available
            else int(data.computeInstanceId),
        )

    def close(self) -> None:
        if self._set is not None:
            self._nvml.nvml.nvmlEventSetFree(self._set)
            self._set = None


class Nvml(NvmlCounters):
    """The NVML facade: inventory, MIG, telemetry, events and topology over one session."""

    def watch_events(
        self, indexes: Iterable[int] | None = None, *, ecc: bool = False
    ) -> EventWatcher:
        return EventWatcher(
            self, range(self.device_count()) if indexes is None else indexes, ecc=ecc
        )

    def processes(self, index: int) -> list[ProcessInfo]:
        """Compute processes on a GPU (with their GPU/compute instance under MIG)."""
        n = self._nvml
        raw = self._call(
            "nvmlDeviceGetComputeRunningProcesses",
            n.nvmlDeviceGetComputeRunningProcesses,
            self.handle(index),
            gpu=index,
        )
        not_available = 0xFFFFFFFF

        def instance(value: Any) -> int | None:
            return None if value is None or int(value) == not_available else int(value)

        return [
            ProcessInfo(
                pid=int(p.pid),
                used_memory_bytes=None if p.usedGpuMemory is None else int(p.usedGpuMemory),
                gpu_instance_id=instance(getattr(p, "gpuInstanceId", None)),
                compute_instance_id=instance(getattr(p, "computeInstanceId", None)),
            )
            for p in raw
        ]

    def is_lost(self, index: int) -> bool:
        """Whether the GPU has fallen off the bus (every NVML call on it fails)."""
        n = self._nvml
        try:
            handle = n.nvmlDeviceGetHandleByIndex(index)
            n.nvmlDeviceGetUUID(handle)
            return False
        except n.NVMLError as error:
            return bool(error.value == n.NVML_ERROR_GPU_IS_LOST)

    def reset_gpus(self, indexes: list[int]) -> None:
        """Reset GPUs (applies a pending MIG mode on Ampere; destroys all MIG instances).

        Not an NVML call: on a real node this runs ``nvidia-smi -r -i <bus ids>`` as mig-parted
        does; on a simulated node it resets the simulated GPUs. Fails with ``GpuError`` naming
        the GPUs when a process holds them.
        """
        if not indexes:
            return
        bus_ids = [self.gpu(i).pci_bus_id for i in indexes]
        sim_reset = getattr(self._nvml, "sim_reset_gpus", None)
        if sim_reset is not None:
            self._call(f"reset of GPU(s) {', '.join(map(str, indexes))}", sim_reset, list(indexes))
        else:
            command = ["nvidia-smi", "-r", "-i", ",".join(bus_ids)]
            try:
                result = subprocess.run(
                    command, capture_output=True, text=True, timeout=120, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise GpuError(f"{' '.join(command)}: {error}") from error
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip().splitlines()
                raise GpuError(
                    f"{' '.join(command)} failed: {output[-1] if output else result.returncode}"
                )
        for index in indexes:
            self._handles.pop(index, None)
            self._gi_profiles.pop(index, None)

    def lost_gpus(self) -> list[int]:
        return [i for i in range(self.device_count()) if self.is_lost(i)]

    def topology(self, a: int, b: int) -> Topology:
        """How GPUs ``a`` and ``b`` are connected: PCIe common ancestor (``unknown`` where the
        driver won't say, e.g. in some VMs) and NVLinks."""
        n = self._nvml
        # The real driver answers NOT_SUPPORTED for a GPU paired with itself (seen on an H200).
        level = (
            0
            if a == b
            else self._optional(
                n.nvmlDeviceGetTopologyCommonAncestor, self.handle(a), self.handle(b)
            )
        )
        links_a = self._nvlinks(a)
        links_b = self._nvlinks(b)
        bus_b = self.gpu(b).pci_bus_id.lower()
        direct = sum(1 for remote, kind in links_a if kind != "switch" and remote == bus_b)
        switched_a = sum(1 for _, kind in links_a if kind == "switch")
        switched_b = sum(1 for _, kind in links_b if kind == "switch")
        via_switch = a != b and switched_a > 0 and switched_b > 0
        return Topology(
            common_ancestor="unknown"
            if level is None
            else _TOPOLOGY_NAMES.get(int(level), "unknown"),
            nvlinks=direct + (min(switched_a, switched_b) if via_switch else 0),
            via_nvswitch=via_switch,
        )

    def _nvlinks(self, index: int) -> list[tuple[str, str]]:
        """Active links of a GPU as (remote bus id, ``gpu``/``switch``); empty without NVLink."""
        n, h = self._nvml, self.handle(index)
        links = []
        for link in range(n.NVML_NVLINK_MAX_LINKS):
            state = self._optional(n.nvmlDeviceGetNvLinkState, h, link)
            if state is None:
                break
            if state != n.NVML_FEATURE_ENABLED:
                continue
            kind = self._optional(n.nvmlDeviceGetNvLinkRemoteDeviceType, h, link)
            remote = self._optional(n.nvmlDeviceGetNvLinkRemotePciInfo, h, link)
            bus = remote.busId if remote is not None else b""
            bus_text = (bus.decode() if isinstance(bus, bytes) else str(bus)).lower()
            links.append(
                (bus_text, "switch" if kind == n.NVML_NVLINK_DEVICE_TYPE_SWITCH else "gpu")
            )
        return links
