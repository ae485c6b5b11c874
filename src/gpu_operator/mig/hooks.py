"""Running mig-parted hooks: each hook's commands in order, the first failure aborts.

As in mig-parted, the child's environment is REPLACED, not merged: it holds the hook's ``envs``
overlaid by every apply flag's environment variable (``MIG_PARTED_CONFIG_FILE``,
``MIG_PARTED_SELECTED_CONFIG``, …) set to its current value, so a hook always sees the config
that is being applied (mig-parted: ``hook.Envs.Combine(flagEnvs)``, the flags win). Nothing else
of our environment leaks in.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from gpu_operator.errors import GpuOperatorError
from gpu_operator.mig.hooks_v1 import HooksSpec


class HookError(GpuOperatorError):
    """A hook command could not start or exited non-zero."""


def hook_environment(flags: Mapping[str, str], envs: Mapping[str, str]) -> dict[str, str]:
    """The complete environment of one hook command: the hook's ``envs``, then the flags'."""
    return {**envs, **flags}


class HookRunner:
    """Runs the hooks of one ``apply``; call it with a hook name (unknown names run nothing)."""

    def __init__(self, spec: HooksSpec | None, flags: Mapping[str, str], *, timeout_s: float = 600):
        self._spec = spec
        self._flags = dict(flags)
        self._timeout_s = timeout_s
        self.ran: list[str] = []

    def __call__(self, name: str) -> None:
        if self._spec is None:
            return
        for number, hook in enumerate(self._spec.hooks.get(name, [])):  # type: ignore[call-overload]
            where = f"hook {name}[{number}] ({hook.command})"
            try:
                result = subprocess.run(
                    [hook.command, *hook.args],
                    env=hook_environment(self._flags, hook.envs),
                    cwd=hook.workdir,
                    timeout=self._timeout_s,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise HookError(f"{where} could not run: {error}") from error
            if result.returncode != 0:
                raise HookError(f"{where} exited with status {result.returncode}")
        self.ran.append(name)
