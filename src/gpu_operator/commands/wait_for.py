"""``gpu-operator wait-for FILE… [--timeout]``: the init containers' gate. Returns within
milliseconds of the last file appearing (inotify); every 30 s says what it waits for and why.

Its two options (ours: upstream's gate is a shell loop) are read by ``settings_engine`` like
every agent's settings: a bad number is one line naming the flag, exit 1."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gpu_operator.cli_settings import given, option
from gpu_operator.hostpaths import host_path
from gpu_operator.settings_engine import Field, number, resolve
from gpu_operator.validator.waiting import wait_for

FIELDS: dict[str, Field[None]] = {
    "timeout": Field("--timeout", (), number),
    "report_every": Field("--report-every", (), number),
}


def wait_for_command(
    files: list[Path] = typer.Argument(..., help="Files that must all exist."),
    timeout: str | None = option(
        FIELDS["timeout"], help="Give up after this many seconds (exit 1); default: wait forever."
    ),
    report_every: str | None = option(
        FIELDS["report_every"], help="Seconds between 'still waiting' lines.", default=30
    ),
) -> None:
    """Block until every FILE exists."""
    values = resolve(FIELDS, given(FIELDS, locals()), os.environ, None).values
    timeout_s: float | None = values.get("timeout")
    missing = wait_for(
        [host_path(f) for f in files],
        timeout_s=timeout_s,
        report_every_s=values.get("report_every", 30.0),
        report=lambda line: typer.echo(line, err=True),
    )
    if missing:
        shown = ", ".join(str(p) for p in missing)
        typer.echo(f"gpu-operator: timed out after {timeout_s:g}s waiting for {shown}", err=True)
        raise typer.Exit(1)
