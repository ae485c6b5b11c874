"""What the exporter serves for simulated nodes: families, labels in upstream order, MIG flex
mode, XIDs, lost GPUs, profiling fields and pod attribution."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.exporter.serving import Exporter
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.podresources import ContainerDevices
from helpers.exporter import balanced, collectors_with, parse  # type: ignore[import-not-found]

MakeExporter = Callable[..., tuple[Exporter, Nvml]]
GPU_LABELS = [
    "gpu",
    "UUID",
    "pci_bus_id",
    "device",
    "modelName",
    "Hostname",
    "DCGM_FI_DRIVER_VERSION",
]


def store_of(spec: str, tmp_path: Path) -> StateStore:
    return StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())


def label_names(body: bytes, family: str) -> list[list[str]]:
    lines = [line for line in body.decode().splitlines() if line.startswith(family + "{")]
    return [re.findall(r'(\w+)="', line.split("{", 1)[1].rsplit("}", 1)[0]) for line in lines]


def test_a_dgx_a100_without_mig_gives_one_series_per_gpu_with_upstream_labels(
    make_exporter: MakeExporter,
) -> None:
    exporter, nvml = make_exporter("dgx-a100")
    exporter.step()
    series = parse(exporter.body)
    temps = series["DCGM_FI_DEV_GPU_TEMP"]
    assert sorted(int(labels["gpu"]) for labels, _ in temps) == list(range(8))
    first = dict(temps[0][0])
    gpu0 = nvml.gpu(0)
    assert first == {
        "gpu": "0",
        "UUID": gpu0.uuid,
        "pci_bus_id": gpu0.pci_bus_id,
        "device": "nvidia0",
        "modelName": "NVIDIA A100-SXM4-40GB",
        "Hostname": "node-a",
        "DCGM_FI_DRIVER_VERSION": "580.159.04",
    }
    assert label_names(exporter.body, "DCGM_FI_DEV_GPU_TEMP")[0] == GPU_LABELS
    for family in (
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_DEV_XID_ERRORS",
    ):
        assert len(series[family]) == 8, family
    telemetry = nvml.telemetry(0)
    fb_used = {labels["gpu"]: value for labels, value in series["DCGM_FI_DEV_FB_USED"]}
    assert fb_used["0"] == telemetry.memory_used_bytes // 2**20  # type: ignore[operator]


def test_values_are_printed_as_dcgm_exporter_prints_them(make_exporter: MakeExporter) -> None:
    exporter, _ = make_exporter("h200")
    exporter.step()
    text = exporter.body.decode()
    assert re.search(r"^DCGM_FI_DEV_POWER_USAGE\{.*\} \d+\.\d{6}$", text, re.MULTILINE)
    assert re.search(r"^DCGM_FI_DEV_GPU_TEMP\{.*\} \d+$", text, re.MULTILINE)
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in text
    assert "# TYPE DCGM_FI_DEV_GPU_TEMP gauge" in text
    assert "DCGM_FI_DEV_XID_ERRORS{" in text
    assert 'err_code="0",err_msg="No Error"} 0' in text


def test_unsupported_counters_are_omitted_not_sentinels(make_exporter: MakeExporter) -> None:
    exporter, _ = make_exporter("t4")
    exporter.step()
    series = parse(exporter.body)
    assert "DCGM_FI_DEV_MEMORY_TEMP" not in series  # GDDR parts have no memory sensor
    assert "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS" not in series
    assert "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" not in series
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in series  # no GPM before Hopper
    assert "9223372036854775794" not in exporter.body.decode()


def test_mig_gpus_are_reported_per_gpu_instance(make_exporter: MakeExporter) -> None:
    exporter, nvml = make_exporter("dgx-a100")
    balanced(nvml, range(2))
    exporter.step()
    series = parse(exporter.body)
    temps = series["DCGM_FI_DEV_GPU_TEMP"]
    per_gpu: dict[str, list[tuple[str, str]]] = {}
    for labels, _ in temps:
        per_gpu.setdefault(labels["gpu"], []).append(
            (labels.get("GPU_I_PROFILE", ""), labels.get("GPU_I_ID", ""))
        )
    assert sorted(per_gpu["0"]) == [
        ("1g.5gb", "7"),
        ("1g.5gb", "8"),
        ("2g.10gb", "4"),
        ("3g.20gb", "2"),
    ]
    assert per_gpu["2"] == [("", "")]  # GPUs without MIG still report as GPUs
    assert label_names(exporter.body, "DCGM_FI_DEV_GPU_TEMP")[0] == (
        [*GPU_LABELS[:5], "GPU_I_PROFILE", "GPU_I_ID", *GPU_LABELS[5:]]
    )
    util_gpus = {labels["gpu"] for labels, _ in series["DCGM_FI_DEV_GPU_UTIL"]}
    assert util_gpus == {str(i) for i in range(2, 8)}  # not reported on GPU instances
    fb = {
        (labels["gpu"], labels.get("GPU_I_ID")): value
        for labels, value in series["DCGM_FI_DEV_FB_FREE"]
    }
    assert fb[("0", "2")] == 20096  # a 3g.20gb instance's own memory, all free
    temps_gpu0 = {value for labels, value in temps if labels["gpu"] == "0"}
    assert len(temps_gpu0) == 1  # device-wide fields repeat the parent's value


def test_device_selection_g_reports_whole_gpus_and_i_filters_instances(
    make_exporter: MakeExporter,
) -> None:
    from gpu_operator.exporter.settings import DeviceSelection

    exporter, nvml = make_exporter("dgx-a100", devices=DeviceSelection.parse("g:0,1"))
    balanced(nvml, range(1))
    exporter.step()
    temps = parse(exporter.body)["DCGM_FI_DEV_GPU_TEMP"]
    assert sorted((labels["gpu"], "GPU_I_ID" in labels) for labels, _ in temps) == [
        ("0", False),
        ("1", False),
    ]
    exporter, nvml = make_exporter("dgx-a100", devices=DeviceSelection.parse("i:2"))
    balanced(nvml, range(1))
    exporter.step()
    temps = parse(exporter.body)["DCGM_FI_DEV_GPU_TEMP"]
    assert {labels.get("GPU_I_ID") for labels, _ in temps if labels["gpu"] == "0"} == {"2"}


def test_an_xid_sets_the_last_xid_and_counts_per_code(
    make_exporter: MakeExporter, clock: Any
) -> None:
    exporter, _nvml = make_exporter(
        "h200",
        collectors=collectors_with("DCGM_EXP_XID_ERRORS_COUNT, counter, XIDs in the window."),
    )
    exporter.xids.record(0, None, 31)
    exporter.xids.record(0, None, 31)
    exporter.xids.record(0, None, 43)
    exporter.step()
    series = parse(exporter.body)
    ((labels, value),) = series["DCGM_FI_DEV_XID_ERRORS"]
    assert value == 43
    assert (labels["err_code"], labels["err_msg"]) == ("43", "GPU stopped processing")
    window = {labels["xid"]: value for labels, value in series["DCGM_EXP_XID_ERRORS_COUNT"]}
    assert window == {"31": 2.0, "43": 1.0}
    assert all(
        labels["window_size_in_ms"] == "300000" for labels, _ in series["DCGM_EXP_XID_ERRORS_COUNT"]
    )
    totals = {labels["xid"]: value for labels, value in series["gpu_operator_exporter_xid_errors"]}
    assert totals == {"31": 2.0, "43": 1.0}
    clock.advance(301)
    exporter.step()
    series = parse(exporter.body)
    assert "DCGM_EXP_XID_ERRORS_COUNT" not in series  # out of the window
    assert {labels["xid"]: v for labels, v in series["gpu_operator_exporter_xid_errors"]} == totals


def test_the_xid_watcher_feeds_injected_events_into_the_metrics(
    make_exporter: MakeExporter, tmp_path: Path
) -> None:
    from gpu_operator.exporter.xids import XidWatcher

    exporter, nvml = make_exporter("dgx-a100")
    watcher = XidWatcher(nvml, exporter.xids, poll_ms=20)
    watcher.start()
    try:
        import time

        time.sleep(0.1)  # the watcher registers before the injection
        faults.inject_xid(store_of("dgx-a100", tmp_path), 3, 48)
        deadline = time.monotonic() + 5
        while (3, None) not in exporter.xids.view().last and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watcher.stop()
        watcher.join(timeout=2)
    exporter.step()
    xids = {
        labels["gpu"]: value for labels, value in parse(exporter.body)["DCGM_FI_DEV_XID_ERRORS"]
    }
    assert xids["3"] == 48
    assert xids["2"] == 0


def test_a_lost_gpu_becomes_a_health_series_and_the_others_keep_reporting(
    make_exporter: MakeExporter, tmp_path: Path
) -> None:
    exporter, _ = make_exporter("dgx-a100")
    exporter.step()
    faults.lose_gpu(store_of("dgx-a100", tmp_path), 5)
    sampled = exporter.step()
    series = parse(exporter.body)
    assert sorted(labels["gpu"] for labels, _ in series["DCGM_FI_DEV_GPU_TEMP"]) == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "6",
        "7",
    ]
    health = {labels["gpu"]: value for labels, value in series["gpu_operator_exporter_gpu_health"]}
    assert health["5"] == 0
    assert health["4"] == 1
    assert series["gpu_operator_exporter_sample_errors"][0][1] == 1
    assert sampled.errors == 1


def test_profiling_fields_come_from_gpm_on_hopper(make_exporter: MakeExporter, clock: Any) -> None:
    exporter, _nvml = make_exporter("h200")
    exporter.step()
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in parse(exporter.body)  # GPM needs two samples
    clock.advance(30)
    exporter.step()
    series = parse(exporter.body)
    for family in (
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_PROF_DRAM_ACTIVE",
    ):
        ((_, value),) = series[family]
        assert 0.0 <= value <= 1.0, family
    assert series["DCGM_FI_PROF_PCIE_TX_BYTES"][0][1] >= 0


def test_a_busy_gpu_shows_activity_in_its_profiling_fields(
    make_exporter: MakeExporter, clock: Any, tmp_path: Path
) -> None:
    exporter, _ = make_exporter("h200")
    faults.start_process(store_of("h200", tmp_path), 0, clock=clock)
    exporter.step()
    clock.advance(30)
    exporter.step()
    series = parse(exporter.body)
    assert series["DCGM_FI_PROF_GR_ENGINE_ACTIVE"][0][1] > 0.5
    assert series["DCGM_FI_DEV_GPU_UTIL"][0][1] >= 55


def test_energy_is_read_on_its_own_slower_cadence(make_exporter: MakeExporter, clock: Any) -> None:
    exporter, _ = make_exporter("h200", energy_interval_ms=60000)

    def energy() -> float:
        return parse(exporter.body)["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"][0][1]

    exporter.step()
    first = energy()
    clock.advance(30)
    exporter.step()
    assert energy() == first  # within the energy interval: the cached value
    clock.advance(31)
    exporter.step()
    assert energy() > first


def test_pods_are_attributed_by_gpu_uuid_and_by_mig_uuid(
    make_exporter: MakeExporter, open_sim: object
) -> None:
    entries: list[ContainerDevices] = []
    exporter, nvml = make_exporter("dgx-a100", pod_source=lambda: entries)
    balanced(nvml, range(1))
    mig = next(d for d in nvml.mig_devices(0) if d.profile == "3g.20gb")
    entries.extend(
        [
            ContainerDevices("trainer-0", "ml", "main", "nvidia.com/mig-3g.20gb", (mig.uuid,)),
            ContainerDevices("web-1", "apps", "srv", "nvidia.com/gpu", (nvml.gpu(4).uuid,)),
            ContainerDevices("other", "x", "c", "example.com/fpga", (nvml.gpu(5).uuid,)),
        ]
    )
    exporter.step()
    exporter.refresh_pods()
    temps = parse(exporter.body)["DCGM_FI_DEV_GPU_TEMP"]
    pods = {(labels["gpu"], labels.get("GPU_I_ID")): labels.get("pod") for labels, _ in temps}
    assert pods[("0", str(mig.gpu_instance_id))] == "trainer-0"
    assert pods[("4", None)] == "web-1"
    assert pods[("5", None)] is None  # not an NVIDIA resource
    labels = next(labels for labels, _ in temps if labels.get("pod") == "web-1")
    assert (labels["namespace"], labels["container"]) == ("apps", "srv")
    web = next(line for line in exporter.body.decode().splitlines() if 'pod="web-1"' in line)
    assert re.findall(r'(\w+)="', web)[-4:] == [
        "DCGM_FI_DRIVER_VERSION",
        "container",
        "namespace",
        "pod",
    ]


def test_no_hostname_drops_the_label_and_model_blanks_can_be_replaced(
    make_exporter: MakeExporter,
) -> None:
    exporter, _ = make_exporter("h200", no_hostname=True, replace_blanks_in_model_name=True)
    exporter.step()
    ((labels, _),) = parse(exporter.body)["DCGM_FI_DEV_GPU_TEMP"]
    assert "Hostname" not in labels
    assert labels["modelName"] == "NVIDIA-H200"


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed"
)
def test_promtool_parses_the_output_and_finds_only_upstream_naming_choices(
    make_exporter: MakeExporter,
) -> None:
    exporter, nvml = make_exporter(
        "dgx-a100",
        collectors=collectors_with(
            "DCGM_EXP_XID_ERRORS_COUNT, counter, XIDs in the window.",
            "DCGM_EXP_CLOCK_EVENTS_COUNT, counter, Clock events in the window.",
        ),
    )
    balanced(nvml, range(2))
    exporter.xids.record(1, 2, 13)
    exporter.step()
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=exporter.scrape(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode in (0, 3), output  # 1 would be a parse error
    allowed = (
        "label names should be written in 'snake_case' not 'camelCase'",
        'counter metrics should have "_total" suffix',
        "metric name should not include type 'counter'",
    )
    problems = [line for line in output.splitlines() if line and not line.endswith(allowed)]
    assert problems == []
