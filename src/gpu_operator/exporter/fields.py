"""The DCGM fields the exporter can serve, with upstream names, ids, units and NVML sources.

Names, ids and units are dcgm-exporter's classic (≤ 4.8) ones, so dashboards and alerts keep
working. Each field says where its value comes from in a ``Reading`` (one sample of a GPU or of
a GPU instance) and how it behaves under MIG (flex mode: a MIG GPU is reported per GPU instance,
device-wide fields repeat the parent's value, utilisation rates are not reported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gpu_operator.exporter.readings import Reading

MIB = 1024 * 1024


class Kind(StrEnum):
    INT = "int"
    DOUBLE = "double"
    LABEL = "label"


class OnMig(StrEnum):
    OWN = "own"
    """Measured per GPU instance (memory, GPM)."""
    PARENT = "parent"
    """A device-wide value repeated on every GPU-instance series (clocks, power, temperature)."""
    NONE = "none"
    """Not reported for GPU instances (GPU_UTIL, MEM_COPY_UTIL: use the profiling fields)."""


Value = int | float | str | None


@dataclass(frozen=True)
class Field:
    name: str
    id: int
    kind: Kind
    read: Callable[[Reading], Value]
    on_mig: OnMig = OnMig.PARENT


def _mib(value: int | None) -> int | None:
    return None if value is None else value // MIB


def _gpm(metric: int, scale: float = 0.01) -> Callable[[Reading], Value]:
    def read(r: Reading) -> Value:
        value = r.gpm.get(metric)
        return None if value is None else value * scale

    return read


def _gpm_bytes(metric: int) -> Callable[[Reading], Value]:
    def read(r: Reading) -> Value:
        value = r.gpm.get(metric)
        return None if value is None else round(value * MIB)

    return read


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("DCGM_FI_DRIVER_VERSION", 1, Kind.LABEL, lambda r: r.driver_version),
        Field("DCGM_FI_NVML_VERSION", 2, Kind.LABEL, lambda r: r.nvml_version),
        Field("DCGM_FI_DEV_BRAND", 51, Kind.LABEL, lambda r: r.brand),
        Field("DCGM_FI_DEV_SERIAL", 53, Kind.LABEL, lambda r: r.serial),
        Field("DCGM_FI_DEV_VBIOS_VERSION", 85, Kind.LABEL, lambda r: r.vbios),
        Field("DCGM_FI_DEV_SM_CLOCK", 100, Kind.INT, lambda r: r.t.sm_clock_mhz),
        Field("DCGM_FI_DEV_MEM_CLOCK", 101, Kind.INT, lambda r: r.t.memory_clock_mhz),
        Field("DCGM_FI_DEV_MEMORY_TEMP", 140, Kind.INT, lambda r: r.t.memory_temp_c),
        Field("DCGM_FI_DEV_GPU_TEMP", 150, Kind.INT, lambda r: r.t.gpu_temp_c),
        Field(
            "DCGM_FI_DEV_POWER_USAGE",
            155,
            Kind.DOUBLE,
            lambda r: None if r.t.power_mw is None else r.t.power_mw / 1000,
        ),
        Field("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 156, Kind.INT, lambda r: r.energy_mj),
        Field("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 202, Kind.INT, lambda r: r.t.pcie_replay_count),
        Field("DCGM_FI_DEV_GPU_UTIL", 203, Kind.INT, lambda r: r.t.gpu_util_pct, OnMig.NONE),
        Field(
            "DCGM_FI_DEV_MEM_COPY_UTIL", 204, Kind.INT, lambda r: r.t.memory_util_pct, OnMig.NONE
        ),
        Field("DCGM_FI_DEV_ENC_UTIL", 206, Kind.INT, lambda r: r.t.encoder_util_pct),
        Field("DCGM_FI_DEV_DEC_UTIL", 207, Kind.INT, lambda r: r.t.decoder_util_pct),
        Field("DCGM_FI_DEV_XID_ERRORS", 230, Kind.INT, lambda r: r.last_xid, OnMig.OWN),
        Field(
            "DCGM_FI_DEV_FB_FREE",
            251,
            Kind.INT,
            lambda r: _mib(r.memory.memory_free_bytes),
            OnMig.OWN,
        ),
        Field(
            "DCGM_FI_DEV_FB_USED",
            252,
            Kind.INT,
            lambda r: _mib(r.memory.memory_used_bytes),
            OnMig.OWN,
        ),
        Field(
            "DCGM_FI_DEV_FB_RESERVED",
            253,
            Kind.INT,
            lambda r: _mib(r.memory.memory_reserved_bytes),
            OnMig.OWN,
        ),
        Field(
            "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 310, Kind.INT, lambda r: r.ecc("volatile_corrected")
        ),
        Field(
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 311, Kind.INT, lambda r: r.ecc("volatile_uncorrected")
        ),
        Field(
            "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", 312, Kind.INT, lambda r: r.ecc("aggregate_corrected")
        ),
        Field(
            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", 313, Kind.INT, lambda r: r.ecc("aggregate_uncorrected")
        ),
        Field(
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            393,
            Kind.INT,
            lambda r: None if r.t.remapped_rows is None else r.t.remapped_rows.uncorrectable,
        ),
        Field(
            "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
            394,
            Kind.INT,
            lambda r: None if r.t.remapped_rows is None else r.t.remapped_rows.correctable,
        ),
        Field(
            "DCGM_FI_DEV_ROW_REMAP_FAILURE",
            395,
            Kind.INT,
            lambda r: None if r.t.remapped_rows is None else int(r.t.remapped_rows.failure),
        ),
        Field("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", 449, Kind.INT, lambda r: r.nvlink_rate),
        Field("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1001, Kind.DOUBLE, _gpm(1), OnMig.OWN),
        Field("DCGM_FI_PROF_SM_ACTIVE", 1002, Kind.DOUBLE, _gpm(2), OnMig.OWN),
        Field("DCGM_FI_PROF_SM_OCCUPANCY", 1003, Kind.DOUBLE, _gpm(3), OnMig.OWN),
        Field("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 1004, Kind.DOUBLE, _gpm(5), OnMig.OWN),
        Field("DCGM_FI_PROF_DRAM_ACTIVE", 1005, Kind.DOUBLE, _gpm(10), OnMig.OWN),
        Field("DCGM_FI_PROF_PIPE_FP64_ACTIVE", 1006, Kind.DOUBLE, _gpm(11), OnMig.OWN),
        Field("DCGM_FI_PROF_PIPE_FP32_ACTIVE", 1007, Kind.DOUBLE, _gpm(12), OnMig.OWN),
        Field("DCGM_FI_PROF_PIPE_FP16_ACTIVE", 1008, Kind.DOUBLE, _gpm(13), OnMig.OWN),
        Field("DCGM_FI_PROF_PCIE_TX_BYTES", 1009, Kind.INT, _gpm_bytes(20), OnMig.OWN),
        Field("DCGM_FI_PROF_PCIE_RX_BYTES", 1010, Kind.INT, _gpm_bytes(21), OnMig.OWN),
    )
}

GPM_METRICS: dict[str, int] = {
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 1,
    "DCGM_FI_PROF_SM_ACTIVE": 2,
    "DCGM_FI_PROF_SM_OCCUPANCY": 3,
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": 5,
    "DCGM_FI_PROF_DRAM_ACTIVE": 10,
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": 11,
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": 12,
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": 13,
    "DCGM_FI_PROF_PCIE_TX_BYTES": 20,
    "DCGM_FI_PROF_PCIE_RX_BYTES": 21,
}
"""DCGM profiling field → the NVML GPM metric that measures it (Hopper and newer)."""

# Exporter-computed families (upstream's DCGM_EXP_* rows); enabled by listing them in the CSV.
XID_COUNT = "DCGM_EXP_XID_ERRORS_COUNT"
CLOCK_EVENTS_COUNT = "DCGM_EXP_CLOCK_EVENTS_COUNT"
SYNTHESISED = {XID_COUNT, CLOCK_EVENTS_COUNT}

# Fields DCGM knows that this exporter does not measure: a CSV may list them (they are skipped
# with a warning naming the line), but a name in neither table is an error.
KNOWN_UNSUPPORTED = {
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",  # 1.x's dcgm_pcie_{tx,rx}_throughput (deprecated in DCGM)
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
    "DCGM_FI_DEV_POWER_VIOLATION",
    "DCGM_FI_DEV_THERMAL_VIOLATION",
    "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
    "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
    "DCGM_FI_DEV_LOW_UTIL_VIOLATION",
    "DCGM_FI_DEV_RELIABILITY_VIOLATION",
    "DCGM_FI_DEV_RETIRED_SBE",
    "DCGM_FI_DEV_RETIRED_DBE",
    "DCGM_FI_DEV_RETIRED_PENDING",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0",
    "DCGM_FI_DEV_OEM_INFOROM_VER",
    "DCGM_FI_DEV_ECC_INFOROM_VER",
    "DCGM_FI_DEV_POWER_INFOROM_VER",
    "DCGM_FI_DEV_INFOROM_IMAGE_VER",
    "DCGM_EXP_GPU_HEALTH_STATUS",
    "DCGM_EXP_P2P_STATUS",
}

CLOCK_EVENT_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "clocks_setting",
    0x4: "power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x100: "display_clocks",
}
