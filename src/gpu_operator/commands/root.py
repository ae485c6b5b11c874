"""The typer face of ``gpu-operator``: the root group (``--sim``, ``--version``), whose
subcommands come from ``gpu_operator.cli.COMMANDS``, each module imported on first use, with
plain-text help (typer's rich help formatting alone costs ~0.2 s).

``gpu_operator.cli`` builds it only when a command needs typer (help, and every command without
a plain runner): an agent started with a plain runner (the exporter) loads no CLI framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

import typer
from typer.core import TyperGroup

from gpu_operator import __version__
from gpu_operator.cli_params import install as install_plain_params


class Entry(Protocol):
    """A row of ``gpu_operator.cli.COMMANDS``."""

    @property
    def target(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def context_settings(self) -> str | None: ...


def load_command(name: str, entry: Entry) -> Any:
    """The click command of subcommand ``name``, its module imported now; plain-text help."""
    module_name, attribute = entry.target.split(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute)
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        holder.callback()(lambda: None)  # a group, so the sub-app stays one of its commands
        command = typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    else:
        settings = getattr(module, entry.context_settings) if entry.context_settings else None
        cls = getattr(module, "COMMAND_CLASS", None)  # the module's own (cli_settings.go_flags)
        holder.command(name, context_settings=settings, cls=cls)(target)
        command = typer.main.get_command(holder)
    _plain(command)
    return command


def _plain(command: Any) -> None:
    """Plain help and errors all the way down."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


class LazyGroup(TyperGroup):
    """The root group: subcommands from ``table``, each imported on first use."""

    table: Mapping[str, Entry] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.table if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.table:
            self.commands[cmd_name] = load_command(cmd_name, self.table[cmd_name])
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry.help) for name, entry in self.table.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


def root(
    ctx: typer.Context,
    sim_spec: str | None = typer.Option(
        None,
        "--sim",
        help="Simulate a node: a preset (dgx-a100, hgx-h100, h200, a30x4, t4), MODEL[xN],... or a "
        "state file. Default: $GPU_OPERATOR_SIM, else the real NVML.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    from gpu_operator.gpu.backend import HardwareSettings

    ctx.obj = HardwareSettings.from_env(sim=sim_spec)


def build(table: Mapping[str, Entry]) -> typer.Typer:
    """The ``gpu-operator`` typer app over the subcommands of ``table``."""
    install_plain_params()
    group = type("GpuOperatorGroup", (LazyGroup,), {"table": table})
    app = typer.Typer(
        cls=group,
        help="gpu-operator: NVIDIA GPUs in Kubernetes, drop-in compatible with NVIDIA's GPU "
        "Operator.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.callback()(root)
    return app
