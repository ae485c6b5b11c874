"""The ``gpu-operator`` command: one CLI, one subcommand per operand or admin tool.

Each subcommand's module is imported when that subcommand runs (or shows its ``--help``), never
before: an agent's process holds what the agent uses and nothing else (``gpu-operator
exporter`` loads no sandbox, operator or Kubernetes client), and starts in a fraction of the
time the whole CLI took. ``gpu-operator --help`` lists the commands from the table below without
importing any of them. Help is plain text (typer's rich help formatting alone costs ~0.2 s).

Every ``GpuOperatorError`` becomes one line on stderr and exit status 1; usage errors exit 2;
no traceback reaches the user for a user error.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

from gpu_operator import __version__
from gpu_operator.cli_params import install as install_plain_params
from gpu_operator.errors import GpuOperatorError
from gpu_operator.executables import DEFAULT_ENV, command_line
from gpu_operator.names import MIG_CONFIG_LABEL, NFD_PREFIX, VALIDATIONS_DIR


@dataclass(frozen=True)
class Lazy:
    """Where a subcommand lives (``module:attribute``: a command function or a ``typer.Typer``)
    and the one-line help ``gpu-operator --help`` shows for it."""

    target: str
    help: str
    context_settings: str | None = None
    """The module attribute holding the command's click context settings, if it has some."""


COMMANDS: dict[str, Lazy] = {
    "gpus": Lazy(
        "gpu_operator.commands.gpus:gpus_command",
        "Show the node's GPUs (real, or simulated with --sim / GPU_OPERATOR_SIM).",
    ),
    "exporter": Lazy(
        "gpu_operator.commands.exporter:exporter_command",
        "Serve GPU metrics in dcgm-exporter's format (no DCGM needed).",
        "CONTEXT_SETTINGS",
    ),
    "device-plugin": Lazy(
        "gpu_operator.commands.device_plugin:device_plugin_command",
        "Run the NVIDIA device plugin: advertise GPUs and MIG devices to the kubelet.",
        "CONTEXT_SETTINGS",
    ),
    "feature-discovery": Lazy(
        "gpu_operator.commands.feature_discovery:feature_discovery_command",
        "Label the node's GPUs as gpu-feature-discovery does (nvidia.com/gpu.*, mig*, cuda.*).",
        "CONTEXT_SETTINGS",
    ),
    "render": Lazy(
        "gpu_operator.commands.render:render_command",
        "Print every object the operator would apply for POLICY and NODES.",
    ),
    "images": Lazy(
        "gpu_operator.commands.images:images_command",
        "List every image to pull (and how to mirror them).",
    ),
    "crds": Lazy(
        "gpu_operator.commands.crds:crds_command",
        "Generate the ClusterPolicy CRD (nvidia.com_clusterpolicies.yaml) from the model.",
    ),
    "node-labeler": Lazy(
        "gpu_operator.commands.node_labeler:node_labeler_command",
        f"Label this node: {NFD_PREFIX}{{pci-10de,system-os_release,kernel-version}}.",
    ),
    "operator": Lazy(
        "gpu_operator.commands.operator:operator_command",
        "Run the operator (the ClusterPolicy controller).",
    ),
    "wait-for": Lazy(
        "gpu_operator.commands.wait_for:wait_for_command", "Block until every FILE exists."
    ),
    "mig-manager": Lazy(
        "gpu_operator.commands.mig_manager:mig_manager_command",
        f"Watch this node's {MIG_CONFIG_LABEL} label and apply it (NODE_NAME required).",
    ),
    "driver-manager": Lazy(
        "gpu_operator.commands.driver_manager:driver_manager_command",
        "Prepare this node for the driver container (NODE_NAME required; upstream env vars).",
    ),
    "preflight": Lazy(
        "gpu_operator.commands.preflight:preflight_command",
        "Name every driver image the operator will pull, and whether it exists.",
    ),
    "status": Lazy(
        "gpu_operator.commands.status:status_command",
        "Per GPU node: GPUs, MIG layout and state, operand readiness, and what blocks.",
    ),
    "config-manager": Lazy(
        "gpu_operator.commands.config_manager:config_manager_command",
        "Install the device-plugin config this node's label selects (upstream's config-manager).",
    ),
    "sim": Lazy(
        "gpu_operator.commands.sim:app",
        "Inject faults into a simulated node (needs --sim or GPU_OPERATOR_SIM).",
    ),
    "sandbox": Lazy(
        "gpu_operator.commands.sandbox:app",
        "The simulated cluster: an API server emulator and simulated nodes.",
    ),
    "mig": Lazy(
        "gpu_operator.commands.mig:app",
        "Partition GPUs with MIG: mig-parted compatible (apply, assert, export, …) + plan.",
    ),
    "validator": Lazy(
        "gpu_operator.commands.validator:app",
        f"Validate the node's GPU stack; write {VALIDATIONS_DIR}/*-ready.",
    ),
    "toolkit": Lazy(
        "gpu_operator.commands.toolkit:app",
        "Configure the container runtime for GPUs; write CDI specs.",
    ),
}


def load_command(name: str) -> Any:
    """The click command of subcommand ``name``, its module imported now; plain-text help."""
    entry = COMMANDS[name]
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
        holder.command(name, context_settings=settings)(target)
        command = typer.main.get_command(holder)
    _plain(command)
    return command


def _plain(command: Any) -> None:
    """Plain help and errors all the way down (rich's help formatter imports in ~0.2 s)."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


install_plain_params()


class LazyGroup(TyperGroup):
    """The root group: subcommands from ``COMMANDS``, each imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry.help) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=LazyGroup,
    help="gpu-operator: NVIDIA GPUs in Kubernetes, drop-in compatible with NVIDIA's GPU Operator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
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


def main(argv: list[str] | None = None) -> None:
    """Run the CLI on ``argv`` (default: the process's arguments)."""
    try:
        app(args=argv, prog_name="gpu-operator")
    except GpuOperatorError as error:
        print(f"gpu-operator: {error}", file=sys.stderr)
        sys.exit(1)


def run_upstream(name: str) -> None:
    """Run upstream executable ``name`` (``dcgm-exporter -f x.csv``) as its subcommand
    (``gpu-operator exporter -f x.csv``), in this process."""
    for key, value in DEFAULT_ENV.get(name, {}).items():
        os.environ.setdefault(key, value)
    main(command_line(name, sys.argv[1:])[1:])


# The console scripts of pyproject's [project.scripts] that carry upstream names.


def nvidia_device_plugin() -> None:
    run_upstream("nvidia-device-plugin")


def gpu_feature_discovery() -> None:
    run_upstream("gpu-feature-discovery")


def nvidia_mig_manager() -> None:
    run_upstream("nvidia-mig-manager")


def nvidia_mig_parted() -> None:
    run_upstream("nvidia-mig-parted")


def nvidia_validator() -> None:
    run_upstream("nvidia-validator")


def dcgm_exporter() -> None:
    run_upstream("dcgm-exporter")


def nvidia_toolkit() -> None:
    run_upstream("nvidia-toolkit")


def vector_add() -> None:
    run_upstream("vectorAdd")


def driver_manager() -> None:
    run_upstream("driver-manager")


def gpu_node_labeler() -> None:
    run_upstream("gpu-node-labeler")


def config_manager() -> None:
    run_upstream("config-manager")
