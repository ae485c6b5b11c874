"""Telemetry for the exporter: one ``Telemetry`` record per GPU or MIG device, and GPM samples.

Each counter is read on its own; one that the GPU doesn't support becomes ``None`` without
failing the others, and one that fails otherwise is recorded in ``Telemetry.errors``. A lost
GPU raises ``GpuLostError``. The energy counter costs ~4 ms on a real H200 (vs ~2 µs for most
others), so callers choose whether to read it (``with_energy``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from gpu_operator.gpu.instances import NvmlMig
from gpu_operator.gpu.records import EccCounts, GpmSample, RemappedRows, Telemetry
from gpu_operator.gpu.session import Closing

MIB = 2**20


class NvmlCounters(NvmlMig):
    def _counter(
        self, index: int, errors: dict[str, str], name: str, fn: Callable[..., Any], *args: Any
    ) -> Any:
        n = self._nvml
        try:
            return fn(*args)
        except n.NVMLError as error:
            if error.value == n.NVML_ERROR_GPU_IS_LOST:
                raise self._wrap(error, name, index) from error
            if error.value not in (n.NVML_ERROR_NOT_SUPPORTED, n.NVML_ERROR_FUNCTION_NOT_FOUND):
                errors[name] = str(error)
            return None

    def telemetry(self, index: int, *, with_energy: bool = True) -> Telemetry:
        """A sample of a full GPU's counters."""
        n, h = self._nvml, self.handle(index)
        errors: dict[str, str] = {}

        def get(name: str, *args: Any) -> Any:
            return self._counter(index, errors, name, getattr(n, name), h, *args)

        util = get("nvmlDeviceGetUtilizationRates")
        memory = get("nvmlDeviceGetMemoryInfo", n.nvmlMemory_v2)
        encoder = get("nvmlDeviceGetEncoderUtilization")
        decoder = get("nvmlDeviceGetDecoderUtilization")
        remapped = get("nvmlDeviceGetRemappedRows")
        fields = self._fields(
            index,
            h,
            [
                n.NVML_FI_DEV_MEMORY_TEMP,
                n.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX,
                n.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX,
            ]
            + ([n.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION] if with_energy else []),
            errors,
        )
        ecc = EccCounts(
            volatile_corrected=get(
                "nvmlDeviceGetTotalEccErrors",
                n.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                n.NVML_VOLATILE_ECC,
            ),
            volatile_uncorrected=get(
                "nvmlDeviceGetTotalEccErrors",
                n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                n.NVML_VOLATILE_ECC,
            ),
            aggregate_corrected=get(
                "nvmlDeviceGetTotalEccErrors",
                n.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                n.NVML_AGGREGATE_ECC,
            ),
            aggregate_uncorrected=get(
                "nvmlDeviceGetTotalEccErrors",
                n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                n.NVML_AGGREGATE_ECC,
            ),
        )
        return Telemetry(
            sm_clock_mhz=get("nvmlDeviceGetClockInfo", n.NVML_CLOCK_SM),
            memory_clock_mhz=get("nvmlDeviceGetClockInfo", n.NVML_CLOCK_MEM),
            gpu_temp_c=get("nvmlDeviceGetTemperature", n.NVML_TEMPERATURE_GPU),
            memory_temp_c=fields.get(n.NVML_FI_DEV_MEMORY_TEMP),
            power_mw=get("nvmlDeviceGetPowerUsage"),
            energy_mj=fields.get(n.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION),
            gpu_util_pct=None if util is None else int(util.gpu),
            memory_util_pct=None if util is None else int(util.memory),
            encoder_util_pct=None if encoder is None else int(encoder[0]),
            decoder_util_pct=None if decoder is None else int(decoder[0]),
            memory_total_bytes=None if memory is None else int(memory.total),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_free_bytes=None if memory is None else int(memory.free),
            memory_reserved_bytes=None if memory is None else int(memory.reserved),
            pcie_replay_count=get("nvmlDeviceGetPcieReplayCounter"),
            remapped_rows=None
            if remapped is None
            else RemappedRows(
                int(remapped[0]), int(remapped[1]), bool(remapped[2]), bool(remapped[3])
            ),
            ecc=ecc if any(v is not None for v in vars(ecc).values()) else None,
            nvlink_rx_kib=fields.get(n.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX),
            nvlink_tx_kib=fields.get(n.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX),
            clock_event_reasons=get("nvmlDeviceGetCurrentClocksEventReasons"),
            errors=errors,
        )

    def energy_mj(self, index: int) -> int | None:
        """Energy since the driver loaded, in mJ: the one slow counter (~4 ms on an H200)."""
        n = self._nvml
        errors: dict[str, str] = {}
        fields = self._fields(
            index, self.handle(index), [n.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION], errors
        )
        return fields.get(n.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION)

    def mig_telemetry(self, index: int, mig_slot: int) -> Telemetry:
        """Per-MIG-device counters NVML answers on a MIG handle (memory); device-wide counters
        are the parent's, as dcgm-exporter reports them on every GPU-instance series."""
        n = self._nvml
        mig = self._call(
            "nvmlDeviceGetMigDeviceHandleByIndex",
            n.nvmlDeviceGetMigDeviceHandleByIndex,
            self.handle(index),
            mig_slot,
            gpu=index,
        )
        errors: dict[str, str] = {}
        memory = self._counter(
            index,
            errors,
            "nvmlDeviceGetMemoryInfo",
            n.nvmlDeviceGetMemoryInfo,
            mig,
            n.nvmlMemory_v2,
        )
        return Telemetry(
            memory_total_bytes=None if memory is None else int(memory.total),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_free_bytes=None if memory is None else int(memory.free),
            memory_reserved_bytes=None if memory is None else int(memory.reserved),
            errors=errors,
        )

    def _fields(
        self, index: int, handle: Any, field_ids: list[int], errors: dict[str, str]
    ) -> dict[int, int]:
        n = self._nvml
        values = self._counter(
            index, errors, "nvmlDeviceGetFieldValues", n.nvmlDeviceGetFieldValues, handle, field_ids
        )
        out: dict[int, int] = {}
        for value in values or []:
            if value.nvmlReturn != n.NVML_SUCCESS:
                continue
            kind = value.valueType
            raw = {
                n.NVML_VALUE_TYPE_DOUBLE: value.value.dVal,
                n.NVML_VALUE_TYPE_UNSIGNED_INT: value.value.uiVal,
                n.NVML_VALUE_TYPE_UNSIGNED_LONG: value.value.ulVal,
                n.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: value.value.ullVal,
                n.NVML_VALUE_TYPE_SIGNED_LONG_LONG: value.value.sllVal,
                n.NVML_VALUE_TYPE_SIGNED_INT: value.value.siVal,
            }.get(kind)
            if raw is not None:
                out[int(value.fieldId)] = int(raw)
        return out

    # --- GPM (Hopper and newer) ----------------------------------------------------------

    def gpm_supported(self, index: int) -> bool:
        support = self._optional(self._nvml.nvmlGpmQueryDeviceSupport, self.handle(index))
        return bool(support is not None and support.isSupportedDevice)

    def gpm_stream(self, index: int, gpu_instance_id: int | None = None) -> GpmStream:
        """A GPM sampler for a GPU (or one of its GPU instances) that keeps its last sample, so
        each ``read`` yields the metrics since the previous one: no sleeping on a sampling path."""
        return GpmStream(self, index, gpu_instance_id)

    def gpm_sample(
        self,
        index: int,
        metric_ids: Iterable[int],
        *,
        interval_s: float = 0.1,
        gpu_instance_id: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> GpmSample:
        """Take two GPM samples ``interval_s`` apart and compute the metrics between them."""
        ids = list(metric_ids)
        with self.gpm_stream(index, gpu_instance_id) as stream:
            stream.read(ids)
            sleep(interval_s)
            sample = stream.read(ids)
        assert sample is not None
        return sample


class GpmStream(Closing):
    """Successive GPM samples of one GPU or GPU instance; see ``NvmlCounters.gpm_stream``."""

    def __init__(self, nvml: NvmlCounters, index: int, gpu_instance_id: int | None):
        self._nvml = nvml
        self._index = index
        self._gi = gpu_instance_id
        n = nvml.nvml
        self._previous: Any = None
        self._previous_at = 0.0
        self._spare: Any = nvml._call("nvmlGpmSampleAlloc", n.nvmlGpmSampleAlloc, gpu=index)

    def _take(self, sample: Any) -> None:
        nvml, n = self._nvml, self._nvml.nvml
        handle = nvml.handle(self._index)
        if self._gi is None:
            nvml._call("nvmlGpmSampleGet", n.nvmlGpmSampleGet, handle, sample, gpu=self._index)
        else:
            nvml._call(
                "nvmlGpmMigSampleGet",
                n.nvmlGpmMigSampleGet,
                handle,
                self._gi,
                sample,
                gpu=self._index,
            )

    def read(self, metric_ids: Iterable[int]) -> GpmSample | None:
        """Metrics between the previous read and now; ``None`` on the first read."""
        nvml, n = self._nvml, self._nvml.nvml
        current = self._spare
        self._take(current)
        now = time.monotonic()
        previous, previous_at = self._previous, self._previous_at
        if previous is None:
            self._spare = nvml._call("nvmlGpmSampleAlloc", n.nvmlGpmSampleAlloc, gpu=self._index)
        else:
            self._spare = previous
        self._previous, self._previous_at = current, now
        if previous is None:
            return None
        ids = list(metric_ids)
        request = n.c_nvmlGpmMetricsGet_t()
        request.version = n.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(ids)
        request.sample1, request.sample2 = previous, current
        for i, metric_id in enumerate(ids):
            request.metrics[i].metricId = metric_id
        nvml._call("nvmlGpmMetricsGet", n.nvmlGpmMetricsGet, request, gpu=self._index)
        # NVML answers NaN where an interval holds no data for a metric (an idle H100 gave NaN
        # DRAM bandwidth in about half of its 50 ms samples): no value, as for a refused metric.
        values = {
            int(request.metrics[i].metricId): float(request.metrics[i].value)
            for i in range(len(ids))
            if request.metrics[i].nvmlReturn == n.NVML_SUCCESS
            and math.isfinite(request.metrics[i].value)
        }
        return GpmSample(values=values, interval_s=now - previous_at)

    def close(self) -> None:
        n = self._nvml.nvml
        for sample in (self._previous, self._spare):
            if sample is not None:
                n.nvmlGpmSampleFree(sample)
        self._previous = self._spare = None
