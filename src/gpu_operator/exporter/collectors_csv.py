"""The dcgm-exporter counters file (``-f/--collectors``): ``DCGM field, prometheus type, help``.

Parsed as upstream parses it (CSV, ``#`` comments, exactly three trimmed fields per record,
types ``gauge``/``counter``/``histogram``/``summary``/``label``). A DCGM field this exporter
does not measure is skipped and reported; a name DCGM does not have is an error naming the file
and line, as is a bad type or a short record. The 1.x names of
``1.x-compatibility-metrics.csv`` (``dcgm_sm_clock``, go-dcgm's ``OLD_DCGM_FI``) are read as
upstream reads them: the series keep the file's name, the value is the field's.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.exporter.fields import FIELDS, KNOWN_UNSUPPORTED, SYNTHESISED

PROM_TYPES = ("gauge", "counter", "histogram", "summary", "label")
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_COLLECTORS = DATA_DIR / "default-counters.csv"


OLD_NAMES = {
    "dcgm_sm_clock": "DCGM_FI_DEV_SM_CLOCK",
    "dcgm_memory_clock": "DCGM_FI_DEV_MEM_CLOCK",
    "dcgm_memory_temp": "DCGM_FI_DEV_MEMORY_TEMP",
    "dcgm_gpu_temp": "DCGM_FI_DEV_GPU_TEMP",
    "dcgm_power_usage": "DCGM_FI_DEV_POWER_USAGE",
    "dcgm_total_energy_consumption": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "dcgm_pcie_tx_throughput": "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "dcgm_pcie_rx_throughput": "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
    "dcgm_pcie_replay_counter": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "dcgm_gpu_utilization": "DCGM_FI_DEV_GPU_UTIL",
    "dcgm_mem_copy_utilization": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "dcgm_enc_utilization": "DCGM_FI_DEV_ENC_UTIL",
    "dcgm_dec_utilization": "DCGM_FI_DEV_DEC_UTIL",
    "dcgm_xid_errors": "DCGM_FI_DEV_XID_ERRORS",
    "dcgm_power_violation": "DCGM_FI_DEV_POWER_VIOLATION",
    "dcgm_thermal_violation": "DCGM_FI_DEV_THERMAL_VIOLATION",
    "dcgm_sync_boost_violation": "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
    "dcgm_board_limit_violation": "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
    "dcgm_low_util_violation": "DCGM_FI_DEV_LOW_UTIL_VIOLATION",
    "dcgm_reliability_violation": "DCGM_FI_DEV_RELIABILITY_VIOLATION",
    "dcgm_fb_free": "DCGM_FI_DEV_FB_FREE",
    "dcgm_fb_used": "DCGM_FI_DEV_FB_USED",
    "dcgm_ecc_sbe_volatile_total": "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
    "dcgm_ecc_dbe_volatile_total": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "dcgm_ecc_sbe_aggregate_total": "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
    "dcgm_ecc_dbe_aggregate_total": "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
    "dcgm_retired_pages_sbe": "DCGM_FI_DEV_RETIRED_SBE",
    "dcgm_retired_pages_dbe": "DCGM_FI_DEV_RETIRED_DBE",
    "dcgm_retired_pages_pending": "DCGM_FI_DEV_RETIRED_PENDING",
    "dcgm_nvlink_flit_crc_error_count_total": "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "dcgm_nvlink_data_crc_error_count_total": "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    "dcgm_nvlink_replay_error_count_total": "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "dcgm_nvlink_recovery_error_count_total": "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
    "dcgm_nvlink_bandwidth_total": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "dcgm_fi_prof_gr_engine_active": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "dcgm_fi_prof_sm_active": "DCGM_FI_PROF_SM_ACTIVE",
    "dcgm_fi_prof_sm_occupancy": "DCGM_FI_PROF_SM_OCCUPANCY",
    "dcgm_fi_prof_pipe_tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "dcgm_fi_prof_dram_active": "DCGM_FI_PROF_DRAM_ACTIVE",
    "dcgm_fi_prof_pcie_tx_bytes": "DCGM_FI_PROF_PCIE_TX_BYTES",
    "dcgm_fi_prof_pcie_rx_bytes": "DCGM_FI_PROF_PCIE_RX_BYTES",
}
"""dcgm-exporter 1.x metric names → the DCGM field each reads (go-dcgm ``OLD_DCGM_FI``)."""


@dataclass(frozen=True)
class Row:
    field: str
    """The DCGM field read (``DCGM_FI_DEV_SM_CLOCK``)."""
    prom_type: str
    help: str
    line: int
    name: str = ""
    """The metric name: the file's (``dcgm_sm_clock`` for a 1.x name); defaults to ``field``."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.field)


@dataclass(frozen=True)
class Collectors:
    metrics: tuple[Row, ...]
    labels: tuple[Row, ...]
    skipped: tuple[str, ...] = field(default=())
    """One message per row that was read but is not served (unsupported field)."""

    @property
    def names(self) -> set[str]:
        return {r.field for r in self.metrics}


def load_collectors(text: str, *, source: str) -> Collectors:
    metrics: list[Row] = []
    labels: list[Row] = []
    skipped: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            record = next(csv.reader(io.StringIO(raw), skipinitialspace=True))
        except (csv.Error, StopIteration) as error:
            raise ConfigError(f"{source}:{number}: not a CSV record: {error}") from error
        parts = [p.strip() for p in record]
        if len(parts) != 3:
            raise ConfigError(
                f"{source}:{number}: expected 3 fields (DCGM field, type, help), got {len(parts)}"
            )
        name, prom_type, help_text = parts
        if prom_type not in PROM_TYPES:
            raise ConfigError(
                f"{source}:{number}: unknown type {prom_type!r} for {name} "
                f"(one of {', '.join(PROM_TYPES)})"
            )
        if name in seen:
            raise ConfigError(
                f"{source}:{number}: {name} is listed twice (first at line {seen[name]})"
            )
        seen[name] = number
        field_name = OLD_NAMES.get(name, name)
        if field_name in KNOWN_UNSUPPORTED:
            skipped.append(f"{source}:{number}: skipping {name}: not measured by this exporter")
            continue
        if field_name not in FIELDS and field_name not in SYNTHESISED:
            raise ConfigError(f"{source}:{number}: unknown DCGM field {name!r}")
        row = Row(field_name, prom_type, help_text, number, name)
        (labels if prom_type == "label" else metrics).append(row)
    return Collectors(tuple(metrics), tuple(labels), tuple(skipped))


IMAGE_DIR = Path("/etc/dcgm-exporter")
"""Where dcgm-exporter's image keeps its collectors files; policies name them there
(``DCGM_EXPORTER_COLLECTORS=/etc/dcgm-exporter/dcp-metrics-included.csv``)."""


def read_collectors(path: Path) -> Collectors:
    """The collectors file at ``path``; one of dcgm-exporter's own files by its image path
    (``/etc/dcgm-exporter/<name>``) is our packaged copy of it when the path holds none."""
    try:
        text = path.read_text()
    except OSError as error:
        packaged = DATA_DIR / path.name
        if path.parent != IMAGE_DIR or not packaged.is_file():
            raise ConfigError(f"collectors file {path}: {error.strerror or error}") from error
        text = packaged.read_text()
    return load_collectors(text, source=str(path))
