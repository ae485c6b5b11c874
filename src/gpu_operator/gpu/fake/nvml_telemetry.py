"""Counters of the simulated NVML: clocks, power, energy, temperatures, utilisation, ECC,
remapped rows, field values and GPM (Hopper and newer).

Device-level counters are refused on MIG device handles (``NOT_SUPPORTED``), as on real
drivers; GPM has its own per-GPU-instance sampling call.
"""

from __future__ import annotations

import itertools
from typing import Any

import pynvml

from gpu_operator.gpu.fake import handles
from gpu_operator.gpu.fake.catalogue import ModelSpec
from gpu_operator.gpu.fake.nvml import err
from gpu_operator.gpu.fake.nvml_mig import FakeNvmlMig
from gpu_operator.gpu.fake.state import Doc
from gpu_operator.gpu.fake.telemetry import GpuReadings, readings

_CLOCK_EVENT_GPU_IDLE = 0x1
_CLOCK_EVENT_SW_POWER_CAP = 0x4

_GPM_METRICS: dict[int, tuple[str, float]] = {
    # NVML_GPM_METRIC_* id → (reading it follows, scale)
    1: ("util", 1.0),  # GRAPHICS_UTIL
    2: ("util", 0.92),  # SM_UTIL
    3: ("util", 0.55),  # SM_OCCUPANCY
    5: ("util", 0.45),  # ANY_TENSOR_UTIL
    10: ("mem", 1.0),  # DRAM_BW_UTIL
    11: ("util", 0.05),  # FP64_UTIL
    12: ("util", 0.30),  # FP32_UTIL
    13: ("util", 0.20),  # FP16_UTIL
    20: ("pcie_tx", 1.0),  # PCIE_TX_PER_SEC (MiB/s)
    21: ("pcie_rx", 1.0),  # PCIE_RX_PER_SEC (MiB/s)
}


def busy_seconds(gpu: Doc, t: float) -> float:
    acc = float(gpu.get("busyAccumS", 0.0))
    since = gpu.get("busySince")
    return acc + (max(0.0, t - float(since)) if since is not None else 0.0)


class FakeNvmlTelemetry(FakeNvmlMig):
    """Counters that move plausibly and deterministically."""

    _gpm_ids = itertools.count(1)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._gpm_samples: dict[int, tuple[int, int | None, float] | None] = {}

    def _readings_of(
        self, doc: Doc, gpu: Doc, model: ModelSpec, gi_id: int | None = None
    ) -> GpuReadings:
        t = self._now(doc)
        procs = gpu["processes"]
        if gi_id is not None:
            procs = [p for p in procs if p.get("gi") == gi_id]
        return readings(
            model, int(doc["seed"]), int(gpu["index"]), t, bool(procs), busy_seconds(gpu, t)
        )

    def _read(self, handle: Any) -> tuple[GpuReadings, Doc, ModelSpec]:
        doc, gpu, model = self._full(handle)
        return self._readings_of(doc, gpu, model), gpu, model

    def nvmlDeviceGetClockInfo(self, handle: Any, type: int) -> int:
        r, _, _ = self._read(handle)
        if type in (pynvml.NVML_CLOCK_GRAPHICS, pynvml.NVML_CLOCK_SM):
            return r.sm_clock_mhz
        if type == pynvml.NVML_CLOCK_MEM:
            return r.memory_clock_mhz
        if type == pynvml.NVML_CLOCK_VIDEO:
            return r.sm_clock_mhz * 9 // 10
        raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int:
        r, _, _ = self._read(handle)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return r.gpu_temp_c

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return self._read(handle)[0].power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        return self._read(handle)[2].power_limit_w * 1000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        return self._read(handle)[0].energy_mj

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        r, _, _ = self._read(handle)
        util = pynvml.c_nvmlUtilization_t()
        util.gpu, util.memory = r.gpu_util, r.memory_util
        return util

    def nvmlDeviceGetEncoderUtilization(self, handle: Any) -> list[int]:
        return [self._read(handle)[0].encoder_util, 167000]

    def nvmlDeviceGetDecoderUtilization(self, handle: Any) -> list[int]:
        return [self._read(handle)[0].decoder_util, 167000]

    def nvmlDeviceGetPcieReplayCounter(self, handle: Any) -> int:
        return int(self._read(handle)[1]["counters"]["pcieReplay"])

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        r, gpu, model = self._read(handle)
        if not gpu["processes"]:
            return _CLOCK_EVENT_GPU_IDLE
        return _CLOCK_EVENT_SW_POWER_CAP if r.power_mw > model.power_limit_w * 900 else 0

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int:
        return self.nvmlDeviceGetCurrentClocksEventReasons(handle)

    def nvmlDeviceGetRemappedRows(self, device: Any) -> tuple[int, int, int, int]:
        _, gpu, model = self._read(device)
        if not model.has_remapped_rows:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        c = gpu["counters"]
        return (int(c["remappedCorrectable"]), int(c["remappedUncorrectable"]), 0, 0)

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, errorType: int, counterType: int) -> int:
        _, gpu, _ = self._read(handle)
        key = {
            (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC): "eccSbeVolatile",
            (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC): "eccDbeVolatile",
            (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC): "eccSbeAggregate",
            (
                pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                pynvml.NVML_AGGREGATE_ECC,
            ): "eccDbeAggregate",
        }.get((errorType, counterType))
        if key is None:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(gpu["counters"][key])

    def nvmlDeviceGetFieldValues(self, handle: Any, fieldIds: list[Any]) -> Any:
        r, gpu, model = self._read(handle)
        c = gpu["counters"]
        known: dict[int, int | None] = {
            pynvml.NVML_FI_DEV_MEMORY_TEMP: r.memory_temp_c if model.has_memory_temp else None,
            pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION: r.energy_mj,
            pynvml.NVML_FI_DEV_ECC_SBE_VOL_TOTAL: int(c["eccSbeVolatile"]),
            pynvml.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: int(c["eccDbeVolatile"]),
            pynvml.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: int(c["eccSbeAggregate"]),
            pynvml.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: int(c["eccDbeAggregate"]),
            pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX: r.nvlink_tx_kib
            if gpu["nvlinks"]
            else None,
            pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX: r.nvlink_rx_kib
            if gpu["nvlinks"]
            else None,
        }
        if model.has_remapped_rows:
            known[pynvml.NVML_FI_DEV_REMAPPED_COR] = int(c["remappedCorrectable"])
            known[pynvml.NVML_FI_DEV_REMAPPED_UNC] = int(c["remappedUncorrectable"])
            known[pynvml.NVML_FI_DEV_REMAPPED_PENDING] = 0
            known[pynvml.NVML_FI_DEV_REMAPPED_FAILURE] = 0
        values = (pynvml.c_nvmlFieldValue_t * len(fieldIds))()
        timestamp_us = int(self._clock() * 1_000_000)
        for i, field in enumerate(fieldIds):
            field_id, scope = field if isinstance(field, tuple) else (field, 0)
            values[i].fieldId = field_id
            values[i].scopeId = scope
            values[i].timestamp = timestamp_us
            value = known.get(field_id)
            if value is None:
                values[i].nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
                continue
            values[i].nvmlReturn = pynvml.NVML_SUCCESS
            values[i].valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
            values[i].value.ullVal = value
        return values

    # --- GPM -----------------------------------------------------------------------------

    def nvmlGpmQueryDeviceSupport(self, device: Any) -> Any:
        _, _, model = self._full(device)
        support = pynvml.c_nvmlGpmSupport_t()
        support.version = pynvml.NVML_GPM_SUPPORT_VERSION
        support.isSupportedDevice = 1 if model.architecture >= pynvml.NVML_DEVICE_ARCH_HOPPER else 0
        return support

    def nvmlGpmSampleAlloc(self) -> Any:
        sample_id = next(self._gpm_ids)
        self._gpm_samples[sample_id] = None
        return handles.make(handles.GPM_SAMPLE, ci=sample_id)

    def nvmlGpmSampleFree(self, gpmSample: Any) -> None:
        self._gpm_samples.pop(handles.decode(gpmSample).ci, None)

    def _gpm_take(self, device: Any, gi_id: int | None, sample: Any) -> Any:
        doc, gpu, model = self._full(device)
        if model.architecture < pynvml.NVML_DEVICE_ARCH_HOPPER:
            raise err(pynvml.NVML_ERROR_NOT_SUPPORTED)
        sample_id = handles.decode(sample).ci
        if sample_id not in self._gpm_samples:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._gpm_samples[sample_id] = (int(gpu["index"]), gi_id, self._now(doc))
        return sample

    def nvmlGpmSampleGet(self, device: Any, gpmSample: Any) -> Any:
        return self._gpm_take(device, None, gpmSample)

    def nvmlGpmMigSampleGet(self, device: Any, gpuInstanceId: int, gpmSample: Any) -> Any:
        return self._gpm_take(device, int(gpuInstanceId), gpmSample)

    def nvmlGpmMetricsGet(self, metricsGet: Any) -> Any:
        first = self._gpm_samples.get(handles.decode(metricsGet.sample1).ci)
        second = self._gpm_samples.get(handles.decode(metricsGet.sample2).ci)
        if first is None or second is None or first[:2] != second[:2] or second[2] < first[2]:
            raise err(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        doc = self._doc()
        gpu = self._gpu_doc(doc, first[0])
        model = self._full(handles.make(handles.DEVICE, first[0]))[2]
        mid = (first[2] + second[2]) / 2
        procs = (
            gpu["processes"]
            if first[1] is None
            else [p for p in gpu["processes"] if p.get("gi") == first[1]]
        )
        r = readings(model, int(doc["seed"]), first[0], mid, bool(procs), busy_seconds(gpu, mid))
        source = {
            "util": float(r.gpu_util),
            "mem": float(r.memory_util),
            "pcie_tx": r.pcie_tx_mib_s,
            "pcie_rx": r.pcie_rx_mib_s,
        }
        for i in range(metricsGet.numMetrics):
            metric = metricsGet.metrics[i]
            known = _GPM_METRICS.get(metric.metricId)
            if known is None:
                metric.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
                continue
            metric.nvmlReturn = pynvml.NVML_SUCCESS
            metric.value = source[known[0]] * known[1]
        return metricsGet
