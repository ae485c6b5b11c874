"""Events and topology of the simulated NVML, and the assembled ``FakeNvml``.

An event set sees only events injected after it was created (as a real one sees only what
happens after registration); ``nvmlEventSetWait`` blocks, polling the shared state, until an
event for a registered GPU and type arrives or the timeout passes (``NVMLError_Timeout``).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pynvml

from gpu_operator.gpu.fake import handles, partitioning
from gpu_operator.gpu.fake.nvml import NOT_AVAILABLE, err
from gpu_operator.gpu.fake.nvml_policy import FakeNvmlPolicy
from gpu_operator.gpu.fake.nvml_telemetry import FakeNvmlTelemetry

SUPPORTED_EVENTS = (
    pynvml.nvmlEventTypeXidCriticalError
    | pynvml.nvmlEventTypeSingleBitEccError
    | pynvml.nvmlEventTypeDoubleBitEccError
)
_POLL_S = 0.005


class FakeNvml(FakeNvmlTelemetry, FakeNvmlPolicy):
    """The whole simulated NVML: what ``gpu_operator.gpu`` loads instead of ``pynvml``."""

    _set_ids = itertools.count(1)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # event set id → {"cursor": last seen event sequence, "regs": {gpu index: type mask}}
        self._event_sets: dict[int, dict[str, Any]] = {}

    # --- events --------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> Any:
        set_id = next(self._set_ids)
        self._event_sets[set_id] = {"cursor": int(self._doc()["eventSeq"]), "regs": {}}
        return handles.make(handles.EVENT_SET, ci=set_id)

    def _event_set(self, event_set: Any) -> dict[str, Any]:
        decoded = handles.decode(event_set)
        found = self._event_sets.get(decoded.ci) if decoded.kind == handles.EVENT_SET else None
        if found is None:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return found

    def nvmlDeviceGetSupportedEventTypes(self, handle: Any) -> int:
        self._full(handle)
        return SUPPORTED_EVENTS

    def nvmlDeviceRegisterEvents(self, handle: Any, eventTypes: int, eventSet: Any) -> None:
        _, gpu, _ = self._full(handle)
        if eventTypes & ~SUPPORTED_EVENTS:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        regs = self._event_set(eventSet)["regs"]
        regs[int(gpu["index"])] = regs.get(int(gpu["index"]), 0) | int(eventTypes)

    def nvmlEventSetWait_v2(self, eventSet: Any, timeoutms: int) -> Any:
        event_set = self._event_set(eventSet)
        deadline = time.monotonic() + timeoutms / 1000
        while True:
            doc = self._doc()
            for event in doc["events"]:
                if event["seq"] <= event_set["cursor"]:
                    continue
                event_set["cursor"] = event["seq"]
                if int(event["type"]) & event_set["regs"].get(int(event["gpu"]), 0):
                    data = pynvml.c_nvmlEventData_t()
                    data.device = handles.make(handles.DEVICE, int(event["gpu"]))
                    data.eventType = int(event["type"])
                    data.eventData = int(event["data"])
                    gi, ci = event.get("gi"), event.get("ci")
                    data.gpuInstanceId = NOT_AVAILABLE if gi is None else int(gi)
                    data.computeInstanceId = NOT_AVAILABLE if ci is None else int(ci)
                    return data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise err(pynvml.NVML_ERROR_TIMEOUT)
            time.sleep(min(_POLL_S, remaining))

    def nvmlEventSetWait(self, eventSet: Any, timeoutms: int) -> Any:
        return self.nvmlEventSetWait_v2(eventSet, timeoutms)

    def nvmlEventSetFree(self, eventSet: Any) -> None:
        self._event_set(eventSet)
        del self._event_sets[handles.decode(eventSet).ci]

    # --- topology ------------------------------------------------------------------------

    def nvmlDeviceGetTopologyCommonAncestor(self, device1: Any, device2: Any) -> int:
        _, a, _ = self._full(device1)
        _, b, _ = self._full(device2)
        if a["index"] == b["index"]:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)  # as the real H200 driver answers
        if a["pcieSwitch"] == b["pcieSwitch"]:
            return pynvml.NVML_TOPOLOGY_MULTIPLE
        if a.get("numaNode") == b.get("numaNode"):
            return pynvml.NVML_TOPOLOGY_NODE
        return pynvml.NVML_TOPOLOGY_SYSTEM

    def _link(self, device: Any, link: int) -> tuple[dict[str, Any], dict[str, Any]]:
        doc, gpu, _ = self._full(device)
        if not 0 <= link < pynvml.NVML_NVLINK_MAX_LINKS:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if link >= int(gpu["nvlinks"]):
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return doc, gpu

    def nvmlDeviceGetNvLinkState(self, device: Any, link: int) -> int:
        self._link(device, link)
        return pynvml.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: Any, link: int) -> int:
        doc, _ = self._link(handle, link)
        return (
            pynvml.NVML_NVLINK_DEVICE_TYPE_SWITCH
            if doc["nvswitch"]
            else pynvml.NVML_NVLINK_DEVICE_TYPE_GPU
        )

    def nvmlDeviceGetNvLinkRemotePciInfo(self, device: Any, link: int) -> Any:
        doc, gpu = self._link(device, link)
        info = pynvml.nvmlPciInfo_t()
        if doc["nvswitch"]:
            # NVSwitches sit on their own buses; six of them, each link to one switch.
            bus_id = f"00000000:{0xC0 + link % 6:02X}:00.0"
        else:
            peers = doc["gpus"]
            bus_id = str(peers[int(gpu["index"]) ^ 1]["busId"]) if len(peers) > 1 else ""
        info.busId = bus_id.encode()
        return info

    # --- not NVML: what `nvidia-smi -r` does on a real node -------------------------------

    def sim_reset_gpus(self, indexes: list[int]) -> None:
        """Reset GPUs as ``nvidia-smi -r -i ...`` would; refused (IN_USE) while processes run."""
        with self._store.update() as doc:
            if any(not 0 <= i < len(doc["gpus"]) for i in indexes):
                raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            gpus = [doc["gpus"][i] for i in indexes]  # a lost GPU may be reset too
            if any(gpu["processes"] for gpu in gpus):
                raise err(pynvml.NVML_ERROR_IN_USE)
            if any(gpu.get("resetBlocked") for gpu in gpus):
                raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
            for gpu in gpus:
                partitioning.reset_gpu(gpu)
