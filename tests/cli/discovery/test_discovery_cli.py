"""``gpu-operator feature-discovery`` as a user runs it: a real process (stdout, exit status,
signals, flags and environment)."""

from __future__ import annotations

import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.gpu import Nvml
from helpers.discovery import apply_layout
from helpers.polling import wait_until

COMMAND = [sys.executable, "-c", "from gpu_operator.cli import main; main()", "feature-discovery"]


def environment(sim_root: Path, **extra: str) -> dict[str, str]:
    prefixes = ("GPU_OPERATOR_", "GFD_", "MIG_STRATEGY", "CONFIG_FILE", "NODE_NAME", "NAMESPACE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({"GPU_OPERATOR_SIM_ROOT": str(sim_root), **extra})
    return env


def feature_discovery(*args: str, sim_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        env=environment(sim_root, **env),
        timeout=60,
        check=False,
    )


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_oneshot_to_stdout_prints_the_upstream_labels_of_a_dgx_a100(tmp_path: Path) -> None:
    result = feature_discovery(
        "--oneshot", "--output-file", "-", sim_root=tmp_path / "sim", GPU_OPERATOR_SIM="dgx-a100"
    )

    assert result.returncode == 0, result.stderr
    labels = parse(result.stdout)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.memory"] == "40960"
    assert labels["nvidia.com/gpu.family"] == "ampere"
    assert labels["nvidia.com/mig.capable"] == "true"
    assert abs(int(labels["nvidia.com/gfd.timestamp"]) - time.time()) < 60
    assert result.stdout.splitlines() == sorted(result.stdout.splitlines())


def test_after_all_balanced_mixed_labels_count_each_profile(
    tmp_path: Path, open_sim: Callable[..., Nvml]
) -> None:
    apply_layout(open_sim("dgx-a100"), "all-balanced")

    result = feature_discovery(
        "--oneshot",
        "--no-timestamp",
        "--output-file",
        "-",
        sim_root=tmp_path / "sim",
        GPU_OPERATOR_SIM="dgx-a100",
        MIG_STRATEGY="mixed",
    )

    assert result.returncode == 0, result.stderr
    labels = parse(result.stdout)
    assert labels["nvidia.com/mig-1g.5gb.count"] == "16"
    assert labels["nvidia.com/mig-2g.10gb.count"] == "8"
    assert labels["nvidia.com/mig-3g.20gb.count"] == "8"
    assert labels["nvidia.com/mig.strategy"] == "mixed"
    assert "nvidia.com/gfd.timestamp" not in labels


def test_a_bad_config_file_is_one_clear_error_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n")

    result = feature_discovery(
        "--oneshot",
        "-o",
        "-",
        sim_root=tmp_path / "sim",
        GPU_OPERATOR_SIM="t4",
        GFD_CONFIG_FILE=str(config),
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"gpu-operator: {config}:5: sharing.timeSlicing.resources[0].replicas: Field required"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has an NVIDIA driver"
)
def test_without_a_driver_and_fail_on_init_error_false_only_the_timestamp_is_labelled(
    tmp_path: Path,
) -> None:
    result = feature_discovery(
        "--oneshot", "-o", "-", "--no-fail-on-init-error", sim_root=tmp_path / "sim"
    )

    assert result.returncode == 0, result.stderr
    assert list(parse(result.stdout)) == ["nvidia.com/gfd.timestamp"]
    assert "No labels generated from any source" in result.stderr


def test_sighup_reloads_the_config_and_sigterm_exits_leaving_the_file(tmp_path: Path) -> None:
    config, output = tmp_path / "config.yaml", tmp_path / "features.d" / "gfd"
    config.write_text("version: v1\nflags:\n  migStrategy: none\n")
    process = subprocess.Popen(
        [*COMMAND, "--output-file", str(output), "--sleep-interval", "infinite", "--no-timestamp"],
        env=environment(tmp_path / "sim", GPU_OPERATOR_SIM="t4", CONFIG_FILE=str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(output.exists, 20), "the labels file is written"
        assert "nvidia.com/mig.strategy" not in parse(output.read_text())

        config.write_text("version: v1\nflags:\n  migStrategy: single\n")
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "nvidia.com/mig.strategy=single" in output.read_text(), 20)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
    assert parse(output.read_text())["nvidia.com/gpu.product"] == "Tesla-T4", "file stays"


def test_the_node_feature_default_without_node_name_says_what_to_set(tmp_path: Path) -> None:
    result = feature_discovery("--oneshot", sim_root=tmp_path / "sim", GPU_OPERATOR_SIM="t4")

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("gpu-operator: NODE_NAME (--node-name) is not set")
    )


def test_boolean_flags_take_a_go_value_and_the_flag_beats_the_environment(tmp_path: Path) -> None:
    output = tmp_path / "features.d" / "gfd"
    process = subprocess.Popen(
        [*COMMAND, "--oneshot=false", "--no-timestamp=true", "--output-file", str(output)],
        env=environment(tmp_path / "sim", GPU_OPERATOR_SIM="t4", GFD_ONESHOT="true"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(output.exists, 20), "the labels file is written"
        assert process.poll() is None, "--oneshot=false beats GFD_ONESHOT=true: it keeps running"
        assert "nvidia.com/gfd.timestamp" not in parse(output.read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def test_oneshot_true_and_no_timestamp_false_are_the_bare_and_default_forms(
    tmp_path: Path,
) -> None:
    result = feature_discovery(
        "--oneshot=T",
        "--no-timestamp=false",
        "-o",
        "-",
        sim_root=tmp_path / "sim",
        GPU_OPERATOR_SIM="t4",
    )

    assert result.returncode == 0, result.stderr
    assert "nvidia.com/gfd.timestamp" in parse(result.stdout)


def test_a_boolean_flag_with_a_word_go_does_not_take_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    result = feature_discovery(
        "--oneshot=maybe", "-o", "-", sim_root=tmp_path / "sim", GPU_OPERATOR_SIM="t4"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "gpu-operator: --oneshot='maybe': not a boolean; use one of "
        "1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"
    ]
