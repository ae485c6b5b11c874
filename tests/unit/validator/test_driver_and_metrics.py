"""The driver component on real file trees (a host root and a driver container root with an
``nvidia-smi`` run through ``chroot``), the /dev/char links, the node status exporter scraped
over HTTP, and the simulated CUDA workload."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpu_operator.gpu import HardwareSettings
from gpu_operator.validator.driver import create_dev_char_symlinks, validate_driver
from gpu_operator.validator.node_status import NodeStatusExporter, count_pci_nvidia
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.vector_add import run_simulated

REAL = HardwareSettings(sim=None)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mknod need root")


def minimal_root(root: Path, smi_script: str) -> Path:
    """A root with /bin/sh (this system's, with its libraries) and an nvidia-smi script."""
    sh = Path(shutil.which("sh") or "/bin/sh").resolve()
    (root / "bin").mkdir(parents=True)
    shutil.copy(sh, root / "bin" / "sh")
    libs = subprocess.run(["ldd", str(sh)], capture_output=True, text=True, check=True).stdout
    for token in libs.split():
        if token.startswith("/") and Path(token).exists():
            target = root / token.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(token).resolve(), target)
    smi = root / "usr/bin/nvidia-smi"
    smi.parent.mkdir(parents=True)
    smi.write_text(f"#!/bin/sh\n{smi_script}\n")
    smi.chmod(0o755)
    return smi


@needs_root
def test_a_host_driver_is_proved_by_nvidia_smi_in_the_host_root(tmp_path: Path) -> None:
    host = tmp_path / "host"
    minimal_root(host, 'echo "NVIDIA-SMI 580.95.05"')
    settings = ValidatorSettings(
        component="driver", host_root_ctr_path=host, dev_char_dir=tmp_path / "none"
    )
    assert validate_driver(settings, REAL) == (
        f"IS_HOST_DRIVER=true\nNVIDIA_DRIVER_ROOT=/\nDRIVER_ROOT_CTR_PATH={host}\n"
        f"NVIDIA_DEV_ROOT=/\nDEV_ROOT_CTR_PATH={host}\n"
    )


@needs_root
def test_a_failing_nvidia_smi_is_reported_with_the_command_and_its_output(tmp_path: Path) -> None:
    host = tmp_path / "host"
    minimal_root(host, 'echo "NVIDIA-SMI has failed because it could not communicate"; exit 9')
    settings = ValidatorSettings(component="driver", host_root_ctr_path=host)
    with pytest.raises(ValidationFailed) as failure:
        validate_driver(settings, REAL)
    assert str(failure.value) == (
        f"driver validation failed: chroot {host} /usr/bin/nvidia-smi exited 9: "
        "NVIDIA-SMI has failed because it could not communicate"
    )


@needs_root
def test_a_driver_container_is_awaited_then_used_from_its_root(tmp_path: Path) -> None:
    out = tmp_path / "validations"
    driver = tmp_path / "run-nvidia-driver"
    minimal_root(driver, "echo ok")
    settings = ValidatorSettings(
        component="driver",
        output_dir=out,
        host_root_ctr_path=tmp_path / "empty-host",
        driver_install_dir_ctr_path=driver,
        dev_char_dir=tmp_path / "none",
    )
    with pytest.raises(
        ValidationFailed, match=r"stat .*\.driver-ctr-ready: no nvidia-smi on the host"
    ):
        validate_driver(settings, REAL)
    out.mkdir()
    (out / ".driver-ctr-ready").write_text("GDS_ENABLED: false\n")
    content = validate_driver(settings, REAL)
    assert content.startswith(
        "IS_HOST_DRIVER=false\nNVIDIA_DRIVER_ROOT=/run/nvidia/driver\nDRIVER_ROOT_CTR_PATH=/driver-root\n"
    )


@needs_root
def test_dev_char_links_name_each_nvidia_device_by_major_and_minor(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    (dev / "nvidia-caps").mkdir(parents=True)
    for name, minor in (("nvidia0", 0), ("nvidiactl", 255), ("nvidia-caps/nvidia-cap1", 1)):
        os.mknod(
            dev / name, 0o600 | stat.S_IFCHR, os.makedev(195 if "cap" not in name else 511, minor)
        )
    (dev / "nvidia-notadevice").write_text("")
    char = tmp_path / "char"
    char.mkdir()
    made = create_dev_char_symlinks(dev, char)
    assert sorted(os.readlink(link) for link in made) == [
        "/dev/nvidia-caps/nvidia-cap1",
        "/dev/nvidia0",
        "/dev/nvidiactl",
    ]
    assert os.readlink(char / "195:255") == "/dev/nvidiactl"
    assert create_dev_char_symlinks(dev, char) == [], "idempotent"


def test_the_node_status_exporter_serves_upstreams_gauges_labelled_with_the_node(
    tmp_path: Path,
) -> None:
    out = tmp_path / "validations"
    out.mkdir()
    (out / "driver-ready").write_text("")
    (out / "toolkit-ready").write_text("")
    exporter = NodeStatusExporter(
        "gpu-node-1",
        out,
        driver_check=lambda: "ok",
        device_count=lambda: 8,
        pci_count=lambda: 8,
    )
    port = exporter.serve(0, "127.0.0.1")
    try:
        exporter.check_driver()
        exporter.count_devices()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        exporter.stop()
    samples = {
        s.name: (s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert samples["gpu_operator_node_driver_ready"] == ({"node": "gpu-node-1"}, 1.0)
    assert samples["gpu_operator_node_toolkit_ready"][1] == 1.0
    assert samples["gpu_operator_node_cuda_ready"][1] == 0.0
    assert samples["gpu_operator_node_plugin_ready"][1] == 0.0
    assert samples["gpu_operator_node_driver_validation"][1] == 1.0
    assert samples["gpu_operator_node_driver_validation_last_success_ts_seconds"][1] > 0
    assert samples["gpu_operator_node_device_plugin_devices_total"][1] == 8
    assert samples["gpu_operator_nvidia_pci_devices_total"][1] == 8
    assert samples["gpu_operator_node_metrics_ready_ts_seconds"][1] > 0


def test_failing_checks_show_as_zero_and_minus_one_not_as_a_crash(tmp_path: Path) -> None:
    def broken_driver() -> str:
        raise ValidationFailed("driver", "nvidia-smi", "no devices")

    def broken_count() -> int:
        raise OSError("API down")

    exporter = NodeStatusExporter(
        "n", tmp_path, driver_check=broken_driver, device_count=broken_count, pci_count=lambda: -1
    )
    exporter.check_driver()
    exporter.count_devices()
    assert exporter.readings.driver_ok is False
    assert exporter.readings.devices_total == -1
    assert count_pci_nvidia(lambda _argv: "01:00.0 3D controller: NVIDIA Corporation GH100\n") == 1


def test_the_simulated_cuda_workload_checks_every_element_on_the_simulated_node(
    tmp_path: Path,
) -> None:
    result = run_simulated(HardwareSettings(sim="h200", sim_root=tmp_path / "sim"), n=1000)
    assert result.summary().startswith("vectorAdd of 1000 elements on simulated NVIDIA H200")
    assert result.summary().endswith("Test PASSED")
