"""``gpu-operator mig …`` takes mig-parted's flags and ``MIG_PARTED_*`` variables through the one
engine: a variable is read, a flag beats it, booleans are urfave/cli's (``-m``,
``--mode-only=false``), and a bad boolean or format is refused at start in one line naming the
variable or flag, exit 1, the GPUs untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_operator.commands.mig import app
from gpu_operator.errors import ConfigError
from helpers.in_process import run_main

WORDS = "use one of 1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GPU_OPERATOR_SIM", "h200")
    return CliRunner()


def test_the_selected_config_flag_beats_the_variable(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIG_PARTED_SELECTED_CONFIG", "all-disabled")
    assert cli.invoke(app, ["apply", "-c", "all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert", "--selected-config=all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert"]).exit_code == 1, "the variable's config is not applied"


def test_a_boolean_flag_bare_or_with_a_value_beats_the_variable(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIG_PARTED_MODE_CHANGE_ONLY", "true")
    assert cli.invoke(app, ["apply", "-c", "all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert", "-c", "all-balanced", "-m=false"]).exit_code == 1
    assert cli.invoke(app, ["apply", "-c", "all-balanced", "--mode-only=false"]).exit_code == 0
    monkeypatch.setenv("MIG_PARTED_MODE_CHANGE_ONLY", "false")
    assert cli.invoke(app, ["assert", "-c", "all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert", "-m", "-c", "all-disabled"]).exit_code == 1


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("MIG_PARTED_MODE_CHANGE_ONLY", "yes", f"not a boolean; {WORDS}"),
        ("MIG_PARTED_SKIP_RESET", "on", f"not a boolean; {WORDS}"),
        ("MIG_PARTED_DEBUG", "verbose", f"not a boolean; {WORDS}"),
    ],
)
def test_a_bad_variable_is_refused_in_one_line_and_nothing_is_applied(
    cli: CliRunner,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    why: str,
) -> None:
    monkeypatch.setenv(variable, value)
    ran = run_main(capsys, "mig", "apply", "-c", "all-balanced")
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.stderr == f"gpu-operator: {variable}={value!r}: {why}\n"
    monkeypatch.delenv(variable)
    assert cli.invoke(app, ["assert", "-c", "all-disabled"]).exit_code == 0, "GPUs untouched"


def test_an_output_format_outside_yaml_and_json_is_refused_naming_the_variable(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIG_PARTED_OUTPUT_FORMAT", "xml")
    result = cli.invoke(app, ["export"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "MIG_PARTED_OUTPUT_FORMAT='xml': expected one of yaml, json"
    assert cli.invoke(app, ["export", "-o", "json"]).stdout.startswith("{")


def test_the_checkpoint_file_comes_from_the_variable_and_is_required(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = cli.invoke(app, ["checkpoint"])
    assert str(missing.exception) == (
        "-f/--checkpoint-file (MIG_PARTED_CHECKPOINT_FILE) is required"
    )
    monkeypatch.setenv("MIG_PARTED_CHECKPOINT_FILE", str(tmp_path / "env.json"))
    assert cli.invoke(app, ["checkpoint"]).exit_code == 0
    assert cli.invoke(app, ["checkpoint", "-f", str(tmp_path / "flag.json")]).exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["env.json", "flag.json"]


def test_hooks_see_every_flag_as_its_variable_with_go_s_spelling(
    cli: CliRunner, tmp_path: Path
) -> None:
    log, hooks = tmp_path / "log", tmp_path / "hooks.yaml"
    echo = "echo $MIG_PARTED_DEBUG $MIG_PARTED_MODE_CHANGE_ONLY $MIG_PARTED_SELECTED_CONFIG"
    hooks.write_text(
        f"version: v1\nhooks:\n  apply-start:\n"
        f"    - {{command: /bin/sh, args: ['-c', '{echo} >> {log}']}}\n"
    )
    args = ["-d", "apply", "-m", "-c", "all-balanced", "-k", str(hooks)]
    assert cli.invoke(app, args).exit_code == 0
    assert log.read_text() == "true true all-balanced\n"
