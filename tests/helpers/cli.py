"""`gpu-operator …` run as a process the way the tests of the CLI tier run it: the real entry
point under this interpreter, the caller's environment minus the variables a test must not
inherit, plus its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def gpu_operator(
    *args: str,
    env: Mapping[str, str],
    drop: tuple[str, ...] = ("GPU_OPERATOR_SIM",),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``gpu-operator ARGS``; variables starting with one of ``drop`` are not inherited."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
        check=False,
    )
