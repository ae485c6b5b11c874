"""Hooks around apply: the v1 hooks file, the order they run in, the REPLACED environment
(the hook's envs overlaid by the apply flags' variables, as mig-parted), and failures that
abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.mig.hooks import HookError, HookRunner
from gpu_operator.mig.hooks_v1 import load_hooks


def recorder(log: Path, names: list[str]) -> str:
    """A hooks file whose every hook appends its name (and the env it saw) to ``log``."""
    lines = ["version: v1", "hooks:"]
    for name in names:
        lines += [
            f"  {name}:",
            "    - command: /bin/sh",
            f"      args: ['-c', 'echo {name} >> {log}; /usr/bin/env > {log}.{name}.env']",
            "      envs: {EXTRA: from-hook, MIG_PARTED_SELECTED_CONFIG: overridden}",
        ]
    return "\n".join(lines) + "\n"


def test_a_hook_sees_only_its_own_envs_and_the_flag_variables_which_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_OF_THE_PARENT", "leak")
    log = tmp_path / "log"
    spec = load_hooks(recorder(log, ["apply-start"]), "hooks.yaml")
    runner = HookRunner(
        spec, {"MIG_PARTED_CONFIG_FILE": "/c.yaml", "MIG_PARTED_SELECTED_CONFIG": "all-balanced"}
    )
    runner("apply-start")
    env = dict(
        line.split("=", 1) for line in Path(f"{log}.apply-start.env").read_text().splitlines()
    )
    assert env["MIG_PARTED_CONFIG_FILE"] == "/c.yaml"
    assert env["MIG_PARTED_SELECTED_CONFIG"] == "all-balanced", "the flags win, as mig-parted"
    assert env["EXTRA"] == "from-hook"
    assert "SECRET_OF_THE_PARENT" not in env
    assert "HOME" not in env


def test_a_failing_command_aborts_the_hook_and_names_it(tmp_path: Path) -> None:
    text = """version: v1
hooks:
  pre-apply-mode:
    - {command: /bin/sh, args: ['-c', 'exit 3']}
    - {command: /bin/sh, args: ['-c', 'touch %s']}
""" % (tmp_path / "second")
    runner = HookRunner(load_hooks(text), {})
    with pytest.raises(
        HookError, match=r"hook pre-apply-mode\[0\] \(/bin/sh\) exited with status 3"
    ):
        runner("pre-apply-mode")
    assert not (tmp_path / "second").exists()


def test_a_command_that_does_not_exist_is_a_hook_error(tmp_path: Path) -> None:
    text = "version: v1\nhooks:\n  apply-exit: [{command: /no/such/binary}]\n"
    with pytest.raises(HookError, match="could not run"):
        HookRunner(load_hooks(text), {})("apply-exit")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "version: v1\nhooks:\n  post-apply: []\n",
            "hooks.yaml:3: hooks.post-apply",
            id="unknown hook",
        ),
        pytest.param(
            "version: v1\nhooks:\n  apply-exit:\n    - {command: /bin/true, shell: yes}\n",
            "hooks.yaml:4: hooks.apply-exit[0].shell: unknown key",
            id="unknown key",
        ),
        pytest.param("version: v2\n", "hooks.yaml:1: version", id="wrong version"),
    ],
)
def test_invalid_hooks_files_are_refused_with_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_hooks(text, "hooks.yaml")
    assert str(info.value).startswith(message), str(info.value)
