"""``gpu-operator mig …`` as users and the mig-manager run it, in process (typer's runner):
mig-parted's flags, environment variables, messages and exit codes; the checks that run it as a
real process are in tests/cli/mig/test_mig_parted_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_operator.commands.mig import app
from gpu_operator.mig.spec_v1 import load_spec


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The ``mig`` command group in process (settings from the environment, as without the
    root's ``--sim``)."""
    monkeypatch.setenv("GPU_OPERATOR_SIM", "h200")
    return CliRunner()


def test_assert_on_a_fresh_node_fails_with_what_differs_and_exit_1(cli: CliRunner) -> None:
    result = cli.invoke(app, ["assert", "-c", "all-balanced"])
    assert result.exit_code == 1
    assert "GPU 0 (NVIDIA H200): MIG mode is disabled, wanted enabled with" in result.stderr
    assert result.stderr.endswith(
        "Assertion failure: selected configuration not currently applied\n"
    )


def test_config_file_and_selected_config_come_from_mig_parted_env_vars(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "version: v1\nmig-configs:\n  seven:\n    - devices: all\n      mig-enabled: true\n"
        '      mig-devices: {"1g.18gb": 7}\n  other:\n    - {devices: all, mig-enabled: false}\n'
    )
    monkeypatch.setenv("MIG_PARTED_CONFIG_FILE", str(config))
    monkeypatch.setenv("MIG_PARTED_SELECTED_CONFIG", "seven")
    assert cli.invoke(app, ["apply"]).exit_code == 0
    result = cli.invoke(app, ["assert"])
    assert (result.exit_code, result.stdout) == (
        0,
        "Selected MIG configuration currently applied\n",
    )


def test_the_config_can_come_from_stdin(cli: CliRunner) -> None:
    text = "version: v1\nmig-configs:\n  x: [{devices: all, mig-enabled: true, mig-devices: {}}]\n"
    result = cli.invoke(app, ["apply", "-f", "-"], input=text)
    assert result.exit_code == 0, result.output
    assert "MIG configuration applied successfully" in result.stdout


def test_valid_config_only_checks_the_file_and_the_name(cli: CliRunner) -> None:
    assert cli.invoke(app, ["assert", "-a", "-c", "all-balanced"]).exit_code == 0
    result = cli.invoke(app, ["assert", "-a", "-c", "no-such-config"])
    assert result.exit_code != 0
    assert "no config named 'no-such-config'" in str(result.exception)


def test_mode_only_assert_passes_once_the_mode_is_right(cli: CliRunner) -> None:
    assert cli.invoke(app, ["apply", "-m", "-c", "all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert", "-m", "-c", "all-balanced"]).exit_code == 0
    assert cli.invoke(app, ["assert", "-c", "all-balanced"]).exit_code == 1


def test_export_prints_the_live_layout_under_the_chosen_label_as_json(cli: CliRunner) -> None:
    cli.invoke(app, ["apply", "-c", "all-3g.71gb"])
    result = cli.invoke(app, ["export", "-o", "json", "-l", "now"])
    data = json.loads(result.stdout)
    assert data["mig-configs"]["now"] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"3g.71gb": 2}}
    ]


def test_generate_config_writes_a_loadable_file(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "generated.yaml"
    assert cli.invoke(app, ["generate-config", "-f", str(out)]).exit_code == 0
    spec = load_spec(out.read_text(), str(out))
    assert "all-balanced" in spec.mig_configs


def test_checkpoint_and_restore_round_trip_through_the_cli(cli: CliRunner, tmp_path: Path) -> None:
    saved = tmp_path / "state.json"
    cli.invoke(app, ["apply", "-c", "all-balanced"])
    assert cli.invoke(app, ["checkpoint", "-f", str(saved)]).exit_code == 0
    cli.invoke(app, ["apply", "-c", "all-disabled"])
    result = cli.invoke(app, ["restore", "-f", str(saved)])
    assert result.exit_code == 0, result.output
    assert cli.invoke(app, ["assert", "-c", "all-balanced"]).exit_code == 0


def test_apply_runs_the_hooks_in_mig_parteds_order(cli: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "log"
    hooks = tmp_path / "hooks.yaml"
    body = "".join(
        f"  {n}:\n    - {{command: /bin/sh, args: ['-c', 'echo {n} >> {log}']}}\n"
        for n in ("apply-start", "pre-apply-mode", "pre-apply-config", "apply-exit")
    )
    hooks.write_text("version: v1\nhooks:\n" + body)
    assert cli.invoke(app, ["apply", "-c", "all-balanced", "-k", str(hooks)]).exit_code == 0
    assert log.read_text().split() == [
        "apply-start",
        "pre-apply-mode",
        "pre-apply-config",
        "apply-exit",
    ]
    log.unlink()
    cli.invoke(app, ["apply", "-c", "all-balanced", "-k", str(hooks)])
    assert log.read_text().split() == ["apply-start", "apply-exit"], "nothing to change"


def test_apply_exit_runs_even_when_apply_fails(cli: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "log"
    hooks = tmp_path / "hooks.yaml"
    hook = f"{{command: /bin/sh, args: ['-c', 'echo x > {log}']}}"
    hooks.write_text(f"version: v1\nhooks:\n  apply-exit: [{hook}]\n")
    result = cli.invoke(app, ["apply", "-c", "all-1g.5gb", "-k", str(hooks)])
    assert result.exit_code != 0
    assert "profile 1g.5gb does not exist" in str(result.exception)
    assert log.read_text() == "x\n"


def test_plan_proposes_a_config_that_applies_on_the_node_it_was_planned_for(
    cli: CliRunner, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("gpu-node-1: h200\n")
    result = cli.invoke(
        app, ["plan", "--demand", "1g.18gb=3,3g.71gb=1", "--nodes", str(nodes), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["satisfied"] is True
    assert data["nodes"] == [{"name": "gpu-node-1", "migConfig": "custom-gpu-node-1"}]
    config = tmp_path / "custom.yaml"
    config.write_text(json.dumps(data["customConfig"]))
    applied = cli.invoke(app, ["apply", "-f", str(config), "-c", "custom-gpu-node-1"])
    assert applied.exit_code == 0, applied.output


def test_plan_exits_1_when_the_cluster_cannot_meet_the_demand(
    cli: CliRunner, tmp_path: Path
) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("small: a30x4\n")
    result = cli.invoke(app, ["plan", "--demand", "4g.24gb=5", "--nodes", str(nodes)])
    assert result.exit_code == 1
    assert "NOT met, short of 4g.24gb" in result.stdout
