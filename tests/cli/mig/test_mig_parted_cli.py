"""``gpu-operator mig`` (nvidia-mig-parted) end to end: as a real process on a simulated node
(exit status, the one line it prints on refusal), and apply against assert over every shipped
config on several presets (typer's runner; seconds per preset)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_operator.commands.mig import app
from helpers.cli import gpu_operator as run_cli

IMPOSSIBLE = """version: v1
mig-configs:
  custom:
    - devices: [0]
      mig-enabled: true
      mig-devices: {"3g.20gb": 2, "1g.5gb": 1}
"""


def gpu_operator(*args: str, sim_root: Path, sim: str) -> subprocess.CompletedProcess[str]:
    own = {"GPU_OPERATOR_SIM_ROOT": str(sim_root), "GPU_OPERATOR_SIM": sim}
    return run_cli(*args, env=own, drop=("GPU_OPERATOR", "MIG_"))


def test_done_when_dgx_a100_all_balanced_applies_asserts_and_reapplies_without_change(
    tmp_path: Path,
) -> None:
    root = tmp_path / "sim"
    first = gpu_operator("mig", "apply", "-c", "all-balanced", sim_root=root, sim="dgx-a100")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "MIG configuration applied successfully\n"
    assert first.stderr.count("3g.20gb@4 2g.10gb@2 1g.5gb@0 1g.5gb@1") == 8

    check = gpu_operator("mig", "assert", "-c", "all-balanced", sim_root=root, sim="dgx-a100")
    assert (check.returncode, check.stdout) == (0, "Selected MIG configuration currently applied\n")

    second = gpu_operator("mig", "apply", "-c", "all-balanced", sim_root=root, sim="dgx-a100")
    assert second.returncode == 0
    assert second.stderr.count("already as configured") == 8
    assert "MIG mode" not in second.stderr
    assert "@" not in second.stderr

    gpus = json.loads(gpu_operator("gpus", "--json", sim_root=root, sim="dgx-a100").stdout)
    for gpu in gpus["gpus"]:
        assert sorted(d["profile"] for d in gpu["migDevices"]) == [
            "1g.5gb",
            "1g.5gb",
            "2g.10gb",
            "3g.20gb",
        ]


def test_done_when_an_impossible_custom_layout_is_refused_in_one_line_naming_the_conflict(
    tmp_path: Path,
) -> None:
    config = tmp_path / "custom.yaml"
    config.write_text(IMPOSSIBLE)
    root = tmp_path / "sim"
    result = gpu_operator("mig", "apply", "-f", str(config), sim_root=root, sim="dgx-a100")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gpu-operator: GPU 0 (NVIDIA A100-SXM4-40GB): 2×3g.20gb + 1g.5gb")
    assert "not enough memory slices" in line
    gpus = json.loads(gpu_operator("gpus", "--json", sim_root=root, sim="dgx-a100").stdout)
    assert all(g["migMode"]["pending"] == "disabled" for g in gpus["gpus"]), "nothing changed"


ONLY_A100 = """\
version: v1
mig-configs:
  a100-only:
    - device-filter: "0x20B010DE"
      devices: all
      mig-enabled: true
      mig-devices: {"3g.20gb": 2}
  hooked:
    - device-filter: "0x20B010DE"
      devices: all
      mig-enabled: false
"""


def test_a_config_that_selects_no_gpu_of_the_node_fails_apply_and_assert_alike(
    tmp_path: Path,
) -> None:
    config = tmp_path / "a100.yaml"
    config.write_text(ONLY_A100)
    root = tmp_path / "sim"
    args = ("-f", str(config), "-c", "a100-only")

    applied = gpu_operator("mig", "apply", *args, sim_root=root, sim="h200")
    asserted = gpu_operator("mig", "assert", *args, sim_root=root, sim="h200")
    mode_applied = gpu_operator("mig", "apply", "-m", *args, sim_root=root, sim="h200")
    mode_asserted = gpu_operator("mig", "assert", "-m", *args, sim_root=root, sim="h200")

    assert (applied.returncode, asserted.returncode) == (1, 1)
    assert (mode_applied.returncode, mode_asserted.returncode) == (1, 1)
    assert applied.stdout == ""
    assert applied.stderr.splitlines() == [
        "gpu-operator: config 'a100-only' selects no GPU of this node (GPU 0 (NVIDIA H200): no "
        "config entry selects this GPU): nothing applied (add an entry whose device-filter "
        "matches, or devices: all)"
    ]
    assert asserted.stderr.splitlines() == [
        "GPU 0 (NVIDIA H200): no config entry selects this GPU",
        "Assertion failure: selected configuration not currently applied",
    ]
    gpus = json.loads(gpu_operator("gpus", "--json", sim_root=root, sim="h200").stdout)
    assert gpus["gpus"][0]["migMode"]["pending"] == "disabled", "nothing changed"


def test_gpus_a_config_leaves_out_are_left_alone_by_apply_and_assert_alike(tmp_path: Path) -> None:
    config = tmp_path / "first.yaml"
    config.write_text(
        "version: v1\nmig-configs:\n  first:\n    - devices: [0]\n      mig-enabled: true\n"
        '      mig-devices: {"3g.20gb": 2}\n'
    )
    root = tmp_path / "sim"
    args = ("-f", str(config), "-c", "first")

    applied = gpu_operator("mig", "apply", *args, sim_root=root, sim="a100-40gbx2")
    asserted = gpu_operator("mig", "assert", *args, sim_root=root, sim="a100-40gbx2")

    assert (applied.returncode, asserted.returncode) == (0, 0), applied.stderr + asserted.stderr
    note = "GPU 1 (NVIDIA A100-SXM4-40GB): no config entry selects this GPU; left as it is"
    assert note in applied.stderr.splitlines()
    assert asserted.stderr.splitlines() == [note]
    gpus = json.loads(gpu_operator("gpus", "--json", sim_root=root, sim="a100-40gbx2").stdout)
    assert [g["migMode"]["pending"] for g in gpus["gpus"]] == ["enabled", "disabled"]


def test_a_refused_apply_runs_no_hook(tmp_path: Path) -> None:
    config, hooks, ran = tmp_path / "a100.yaml", tmp_path / "hooks.yaml", tmp_path / "ran"
    config.write_text(ONLY_A100)
    hooks.write_text(
        "version: v1\nhooks:\n  apply-start:\n  - command: /bin/sh\n"
        f"    args: ['-c', 'touch {ran}']\n"
    )
    result = gpu_operator(
        "mig", "apply", "-f", str(config), "-c", "hooked", "-k", str(hooks),
        sim_root=tmp_path / "sim", sim="h200",
    )  # fmt: skip
    assert result.returncode == 1
    assert not ran.exists()


def _shipped_config_names() -> list[str]:
    from gpu_operator.mig.defaults import default_spec

    return list(default_spec().mig_configs)


@pytest.mark.parametrize("preset", ["h200", "a30x4", "t4"])
def test_apply_and_assert_agree_on_every_shipped_config(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever apply says (done, or refused), assert of the same config then says the same:
    including the configs whose entries select none of this node's GPUs."""
    runner = CliRunner()
    monkeypatch.setenv("GPU_OPERATOR_SIM", preset)
    disagree = []
    for number, name in enumerate(_shipped_config_names()):
        monkeypatch.setenv("GPU_OPERATOR_SIM_ROOT", str(tmp_path / str(number)))
        applied = runner.invoke(app, ["apply", "-c", name]).exit_code
        asserted = runner.invoke(app, ["assert", "-c", name]).exit_code
        if (applied == 0) != (asserted == 0):
            disagree.append(f"{name}: apply {applied}, assert {asserted}")
    assert disagree == []
