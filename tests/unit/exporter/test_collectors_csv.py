"""The counters CSV is read as dcgm-exporter reads it, and bad rows are refused by line."""

from __future__ import annotations

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.exporter.collectors_csv import DATA_DIR, load_collectors, read_collectors

DEFAULT_FAMILIES = {
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_ENC_UTIL",
    "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
}  # reference §1.2: 25 families (VGPU_LICENSE_STATUS is listed but never present on bare metal)


def test_the_shipped_default_file_serves_the_upstream_default_families() -> None:
    table = read_collectors(DATA_DIR / "default-counters.csv")
    assert table.names == DEFAULT_FAMILIES
    assert [r.field for r in table.labels] == ["DCGM_FI_DRIVER_VERSION"]
    assert table.skipped == (
        f"{DATA_DIR / 'default-counters.csv'}:45: skipping DCGM_FI_DEV_VGPU_LICENSE_STATUS: "
        "not measured by this exporter",
    )


def test_both_shipped_files_have_the_same_active_rows_as_upstream_4x() -> None:
    default = read_collectors(DATA_DIR / "default-counters.csv")
    dcp = read_collectors(DATA_DIR / "dcp-metrics-included.csv")
    assert [(r.field, r.prom_type) for r in default.metrics] == [
        (r.field, r.prom_type) for r in dcp.metrics
    ]


def test_types_come_from_the_file() -> None:
    table = load_collectors(
        "DCGM_FI_DEV_GPU_TEMP, counter, t\nDCGM_FI_DEV_SERIAL, label, s\n", source="x.csv"
    )
    assert [(r.field, r.prom_type) for r in table.metrics] == [("DCGM_FI_DEV_GPU_TEMP", "counter")]
    assert [r.field for r in table.labels] == ["DCGM_FI_DEV_SERIAL"]


def test_fields_are_trimmed_and_comments_and_blank_lines_skipped() -> None:
    table = load_collectors("# comment\n\n  DCGM_FI_DEV_DEC_UTIL ,  gauge ,  d  \n", source="x.csv")
    assert [(r.field, r.help, r.line) for r in table.metrics] == [("DCGM_FI_DEV_DEC_UTIL", "d", 3)]


def test_a_quoted_help_text_may_hold_commas() -> None:
    table = load_collectors('DCGM_FI_DEV_GPU_TEMP, gauge, "hot, or not"\n', source="x.csv")
    assert table.metrics[0].help == "hot, or not"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "DCGM_FI_DEV_GPU_TEMP, gauge\n", "x.csv:1: expected 3 fields", id="two fields"
        ),
        pytest.param(
            "\nDCGM_FI_DEV_GPU_TEMP, gauge, a, b\n", "x.csv:2: expected 3 fields", id="four fields"
        ),
        pytest.param(
            "DCGM_FI_DEV_GPU_TEMP, gaug, t\n", "x.csv:1: unknown type 'gaug'", id="typo in the type"
        ),
        pytest.param(
            "DCGM_FI_DEV_GPU_TEMPERATURE, gauge, t\n",
            "x.csv:1: unknown DCGM field",
            id="unknown field",
        ),
        pytest.param(
            "DCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_FI_DEV_GPU_TEMP, gauge, t\n",
            "x.csv:2: DCGM_FI_DEV_GPU_TEMP is listed twice (first at line 1)",
            id="duplicate row",
        ),
    ],
)
def test_a_bad_row_is_one_error_naming_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_collectors(text, source="x.csv")


def test_a_missing_file_names_the_path(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ConfigError, match=r"collectors file /nonexistent\.csv"):
        read_collectors(Path("/nonexistent.csv"))


def test_dcgm_exporters_image_paths_are_our_packaged_copies_where_the_path_holds_none() -> None:
    """NVIDIA's policies name `/etc/dcgm-exporter/dcp-metrics-included.csv`: the file their
    image ships; ours (or the sandbox playing theirs) serves the same rows from the package."""
    from pathlib import Path

    image_path = Path("/etc/dcgm-exporter/dcp-metrics-included.csv")
    if image_path.exists():
        pytest.skip(f"{image_path} exists on this machine")
    packaged = read_collectors(DATA_DIR / "dcp-metrics-included.csv")
    assert read_collectors(image_path).metrics == packaged.metrics
    with pytest.raises(ConfigError, match=r"collectors file /etc/dcgm-exporter/mine\.csv"):
        read_collectors(Path("/etc/dcgm-exporter/mine.csv"))
