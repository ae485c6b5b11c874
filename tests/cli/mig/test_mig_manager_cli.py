"""``gpu-operator mig-manager`` as its pod starts it: a boolean variable that is not one of Go's
words stops the agent at start, before any call to the API server or the GPUs, with one line
and exit status 1."""

from __future__ import annotations

from pathlib import Path

from helpers.cli import gpu_operator


def test_a_boolean_variable_that_is_not_a_go_boolean_is_refused_at_start_in_one_line(
    tmp_path: Path,
) -> None:
    # One variable stands for all three: tests/unit/mig/test_mig_manager.py checks each one's
    # line in-process; what this adds (the one line on stderr, exit 1, nothing touched) is the
    # same path for every variable.
    result = gpu_operator(
        "mig-manager",
        env={
            "NODE_NAME": "gpu-node-1",
            "GPU_OPERATOR_SIM": "h200",
            "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"),
            # An API server that does not exist: the refusal must come before any call.
            "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
            "WITH_REBOOT": "maybe",
        },
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "gpu-operator: WITH_REBOOT='maybe': not a boolean; use one of "
        "1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"
    ]
    assert not (tmp_path / "sim").exists() or not any((tmp_path / "sim").rglob("*.json"))
