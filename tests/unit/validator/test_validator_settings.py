"""``gpu-operator validator`` (nvidia-validator) takes its settings as upstream's urfave/cli does,
through the one engine: a variable is read, a flag beats it, a bad boolean or integer is refused
at start in one line naming the variable or flag and the accepted words, exit 1, and no status
file is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.commands.validator import validator_settings
from gpu_operator.errors import ConfigError
from helpers.in_process import run_main

WORDS = "use one of 1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulated T4 node and the driver component, as the pod's environment gives them."""
    monkeypatch.setenv("GPU_OPERATOR_SIM", "t4")
    monkeypatch.setenv("COMPONENT", "driver")


@pytest.mark.usefixtures("node")
def test_the_output_dir_variable_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "env"))
    ran = run_main(capsys, "validator")
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "env" / "driver-ready").exists()


@pytest.mark.usefixtures("node")
def test_the_flag_beats_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "env"))
    ran = run_main(capsys, "validator", "-o", str(tmp_path / "flag"), "--with-wait=false")
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "flag" / "driver-ready").exists()
    assert not (tmp_path / "env").exists()


@pytest.mark.usefixtures("node")
@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("WITH_WAIT", "yes", f"not a boolean; {WORDS}"),
        ("DRIVER_VALIDATION_SKIP_GPU_INIT", "on", f"not a boolean; {WORDS}"),
        ("DISABLE_DEV_CHAR_SYMLINK_CREATION", "2", f"not a boolean; {WORDS}"),
        ("METRICS_PORT", "80a", "not an integer"),
        ("SLEEP_INTERVAL_SECONDS", "5s", "not a number"),
        ("MIG_STRATEGY", "both", "expected one of none, single, mixed"),
    ],
)
def test_a_bad_variable_is_refused_in_one_line_and_no_status_file_changes(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    why: str,
) -> None:
    ready = tmp_path / "out" / "driver-ready"
    ready.parent.mkdir()
    ready.write_text("from the last run\n")
    monkeypatch.setenv("OUTPUT_DIR", str(ready.parent))
    monkeypatch.setenv(variable, value)
    ran = run_main(capsys, "validator")
    assert ran.code == 1
    assert ran.stderr == f"gpu-operator: {variable}={value!r}: {why}\n"
    assert ready.read_text() == "from the last run\n"


@pytest.mark.usefixtures("node")
def test_a_bad_boolean_flag_is_named_as_the_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ran = run_main(capsys, "validator", "-o", str(tmp_path), "-w=maybe")
    assert (ran.code, ran.stderr) == (
        1,
        f"gpu-operator: --with-wait='maybe': not a boolean; {WORDS}\n",
    )


def test_booleans_take_go_s_words_bare_or_with_a_value_flag_over_variable() -> None:
    env = {"COMPONENT": "cuda", "WITH_WAIT": "F", "WITH_WORKLOAD": "0", "METRICS_PORT": "9"}
    settings, _ = validator_settings({"with_wait": "true", "metrics_port": "8000"}, env)
    assert (settings.with_wait, settings.with_workload, settings.metrics_port) == (
        True,
        False,
        8000,
    )
    settings, _ = validator_settings({}, env)
    assert (settings.with_wait, settings.metrics_port) == (False, 9)


def test_the_defaults_are_upstream_s_and_an_empty_number_variable_is_unset() -> None:
    settings, kubeconfig = validator_settings(
        {}, {"COMPONENT": "driver", "SLEEP_INTERVAL_SECONDS": "", "KUBECONFIG": ""}
    )
    assert (settings.with_wait, settings.with_workload, settings.sleep_interval_s) == (
        False,
        True,
        5.0,
    )
    assert (settings.mig_strategy, settings.metrics_port, kubeconfig) == ("single", 0, None)


def test_the_component_is_required() -> None:
    with pytest.raises(ConfigError, match=r"-c/--component \(COMPONENT\) is required"):
        validator_settings({}, {})


def test_skip_validation_writes_the_status_file_without_the_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKIP_VALIDATION", "true")
    monkeypatch.setenv("COMPONENT", "cuda")  # no API server, no pod: only the file
    ran = run_main(capsys, "validator", "-o", str(tmp_path))
    assert ran.code == 0, ran.stderr
    assert (tmp_path / "cuda-ready").read_text() == ""


@pytest.mark.usefixtures("node")
def test_skip_validation_of_the_driver_is_refused_and_nothing_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "driver-ready").write_text("IS_HOST_DRIVER=true\n")
    ran = run_main(capsys, "validator", "-o", str(tmp_path), "--skip-validation", "-r")
    assert (ran.code, ran.stderr) == (
        1,
        "gpu-operator: SKIP_VALIDATION: skipping validation is not supported for component "
        "'driver' (only toolkit, cuda, plugin)\n",
    )
    assert (tmp_path / "driver-ready").read_text() == "IS_HOST_DRIVER=true\n"


@pytest.mark.usefixtures("node")
def test_cleanup_all_empties_the_output_directory_first(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "validations"
    out.mkdir()
    (out / "plugin-ready").touch()
    monkeypatch.setenv("CLEANUP_ALL", "1")
    ran = run_main(capsys, "validator", "-o", str(out))
    assert ran.code == 0, ran.stderr
    assert sorted(p.name for p in out.iterdir()) == ["driver-ready"]
