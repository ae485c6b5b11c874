"""``gpu-operator wait-for FILE… [--timeout]``: the init containers' gate. Returns within
milliseconds of the last file appearing (inotify); every 30 s says what it waits for and why."""

from __future__ import annotations

from pathlib import Path

import typer

from gpu_operator.hostpaths import host_path
from gpu_operator.validator.waiting import wait_for


def wait_for_command(
    files: list[Path] = typer.Argument(..., help="Files that must all exist."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Give up after this many seconds (exit 1); default: wait forever."
    ),
    report_every: float = typer.Option(
        30.0, "--report-every", help="Seconds between 'still waiting' lines."
    ),
) -> None:
    """Block until every FILE exists."""
    missing = wait_for(
        [host_path(f) for f in files],
        timeout_s=timeout,
        report_every_s=report_every,
        report=lambda line: typer.echo(line, err=True),
    )
    if missing:
        shown = ", ".join(str(p) for p in missing)
        typer.echo(f"gpu-operator: timed out after {timeout:g}s waiting for {shown}", err=True)
        raise typer.Exit(1)
