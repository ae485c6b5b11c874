"""``gpu-operator exporter``: dcgm-exporter's flags and environment variables.

The command itself is ``gpu_operator.exporter.process.run``, which ``gpu_operator.cli`` calls
without typer when the exporter is started (``gpu-operator exporter ...``, ``dcgm-exporter
...``); this typer face of it serves ``--help`` and callers that go through the typer app.
"""

from __future__ import annotations

import typer

from gpu_operator.exporter.process import help_text

CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Every flag reaches ``exporter_command`` unparsed: dcgm-exporter's flags are Go flags
(``-address``, ``--kubernetes=false``, ``-rbmn``), parsed by ``gpu_operator.exporter.flags``."""


def exporter_command(ctx: typer.Context) -> None:
    """Serve GPU metrics in dcgm-exporter's format (no DCGM needed)."""
    from gpu_operator.exporter.process import run

    run(list(ctx.args), ctx.obj)


exporter_command.__doc__ = help_text()
