"""`gpu-operator …` in this process, as the user's shell would see it: ``gpu_operator.cli.main``
on the arguments, with the environment the test set (``monkeypatch.setenv``); the exit status
and what went to stdout and stderr."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpu_operator.cli import main


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """Run ``gpu-operator ARGS`` in process; its exit status (0 when it returned) and output."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()
    return Ran(code, out, err)
