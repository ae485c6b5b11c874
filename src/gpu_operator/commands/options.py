"""The typer option the node agents' commands declare each flag with: no default (the agent's
settings loader fills it), its environment variable named at the end of the help text."""

from __future__ import annotations

from typing import Any

import typer


def env_option(*names: str, env: str, help: str) -> Any:
    """A flag that defaults to None, with ``Env: <env>.`` after its help."""
    return typer.Option(None, *names, help=f"{help} Env: {env}.", show_default=False)
