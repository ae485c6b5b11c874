"""The startup probe's script, run for real with ``sh`` against a fake ``/sys/module`` and a
fake ``nvidia-smi``; the ready file's content; and ``DRIVER_CONFIG_DIGEST``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_operator.driver.startup import (
    CONFIG_MAP,
    SCRIPT_KEY,
    config_digest,
    config_map,
    parse_ready,
    ready_content,
    startup_probe,
    state_text,
    stored_digest,
)

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")


def probe(
    tmp_path: Path, *, smi_ok: bool = True, modules: tuple[str, ...] = ("nvidia",), **env: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "startup-probe.sh"
    script.write_text(config_map("gpu-operator")["data"][SCRIPT_KEY])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nexit {0 if smi_ok else 9}\n")
    smi.chmod(0o755)
    for module in modules:
        (tmp_path / "sys" / module).mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys" / module / "refcnt").write_text("1\n")
    full = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SYS_MODULE_DIR": str(tmp_path / "sys"),
        "VALIDATIONS_DIR": str(tmp_path / "validations"),
        **env,
    }
    return subprocess.run(
        ["sh", str(script)], env=full, capture_output=True, text=True, check=False
    )


def test_a_loaded_answering_driver_writes_the_ready_file_with_its_flags(tmp_path: Path) -> None:
    done = probe(tmp_path, modules=("nvidia", "nvidia_fs"), GDS_ENABLED="true")
    assert done.returncode == 0, done.stdout
    written = (tmp_path / "validations" / ".driver-ctr-ready").read_text()
    assert written == ready_content(gds=True, gdrcopy=False, rdma=False)
    assert parse_ready(written) == {
        "GDS_ENABLED": True,
        "GDRCOPY_ENABLED": False,
        "GPU_DIRECT_RDMA_ENABLED": False,
    }


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        pytest.param({"modules": ()}, "kernel module nvidia is not loaded", id="module not loaded"),
        pytest.param({"smi_ok": False}, "nvidia-smi failed", id="nvidia-smi fails"),
        pytest.param(
            {"GPU_DIRECT_RDMA_ENABLED": "true"},
            "kernel module nvidia_peermem",
            id="rdma without peermem",
        ),
    ],
)
def test_a_driver_that_is_not_ready_writes_nothing_and_says_why(
    tmp_path: Path, kw: dict[str, object], said: str
) -> None:
    done = probe(tmp_path, **kw)  # type: ignore[arg-type]
    assert done.returncode == 1
    assert said in done.stdout
    assert not (tmp_path / "validations" / ".driver-ctr-ready").exists()


def test_the_config_map_and_probe_keep_upstream_names_and_timings() -> None:
    cm = config_map("gpu-operator", {"app": "nvidia-driver-daemonset"})
    assert cm["metadata"]["name"] == CONFIG_MAP == "nvidia-driver-startup-probe"
    assert startup_probe({"failureThreshold": 60})["failureThreshold"] == 60
    assert startup_probe()["initialDelaySeconds"] == 60


CONTAINER = {
    "name": "nvidia-driver-ctr",
    "image": "nvcr.io/nvidia/driver:595.91.07-ubuntu22.04",
    "args": ["init"],
    "env": [
        {"name": "KERNEL_MODULE_TYPE", "value": "auto"},
        {"name": "DRIVER_CONFIG_DIGEST", "value": "old"},
    ],
}


def test_the_digest_changes_with_the_image_or_env_but_not_with_itself_or_the_pool_name() -> None:
    base = config_digest(CONTAINER)
    assert (
        config_digest(
            {
                **CONTAINER,
                "env": [*CONTAINER["env"][:1], {"name": "DRIVER_CONFIG_DIGEST", "value": base}],
            }
        )
        == base
    )
    assert config_digest({**CONTAINER, "image": "nvcr.io/nvidia/driver:600-ubuntu22.04"}) != base
    assert (
        config_digest({**CONTAINER, "env": [{"name": "KERNEL_MODULE_TYPE", "value": "open"}]})
        != base
    )
    assert config_digest(CONTAINER, {"repo-config": "7"}) != base
    assert len(base) == 16


def test_the_state_file_round_trips_the_digest() -> None:
    assert stored_digest(state_text("abc")) == "abc"
    assert stored_digest("abc\n") == "abc"
    assert stored_digest(None) is None
