"""The ``gpu-operator`` command: one CLI, one subcommand per operand or admin tool.

Every ``GpuOperatorError`` becomes one line on stderr and exit status 1; usage errors exit 2;
no traceback reaches the user for a user error.
"""

from __future__ import annotations

import sys

import typer

from gpu_operator import __version__
from gpu_operator.commands import mig, sandbox, sim
from gpu_operator.commands import toolkit as toolkit_commands
from gpu_operator.commands import validator as validator_commands
from gpu_operator.commands.config_manager import config_manager_command
from gpu_operator.commands.crds import crds_command
from gpu_operator.commands.device_plugin import CONTEXT_SETTINGS, device_plugin_command
from gpu_operator.commands.driver_manager import driver_manager_command
from gpu_operator.commands.exporter import exporter_command
from gpu_operator.commands.feature_discovery import CONTEXT_SETTINGS as GFD_CONTEXT_SETTINGS
from gpu_operator.commands.feature_discovery import feature_discovery_command
from gpu_operator.commands.gpus import gpus_command
from gpu_operator.commands.images import images_command
from gpu_operator.commands.mig_manager import mig_manager_command
from gpu_operator.commands.node_labeler import node_labeler_command
from gpu_operator.commands.operator import operator_command
from gpu_operator.commands.preflight import preflight_command
from gpu_operator.commands.render import render_command
from gpu_operator.commands.status import status_command
from gpu_operator.commands.wait_for import wait_for_command
from gpu_operator.errors import GpuOperatorError
from gpu_operator.gpu import HardwareSettings

app = typer.Typer(
    help="gpu-operator: NVIDIA GPUs in Kubernetes, drop-in compatible with NVIDIA's GPU Operator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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
    ctx.obj = HardwareSettings.from_env(sim=sim_spec)


app.command("gpus")(gpus_command)
app.command("exporter")(exporter_command)
app.command("device-plugin", context_settings=CONTEXT_SETTINGS)(device_plugin_command)
app.command("feature-discovery", context_settings=GFD_CONTEXT_SETTINGS)(
    feature_discovery_command
)
app.command("render")(render_command)
app.command("images")(images_command)
app.command("crds")(crds_command)
app.command("node-labeler")(node_labeler_command)
app.command("operator")(operator_command)
app.add_typer(sim.app, name="sim")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(mig.app, name="mig")
app.add_typer(validator_commands.app, name="validator")
app.add_typer(toolkit_commands.app, name="toolkit")
app.command("wait-for")(wait_for_command)
app.command("mig-manager")(mig_manager_command)
app.command("driver-manager")(driver_manager_command)
app.command("preflight")(preflight_command)
app.command("status")(status_command)
app.command("config-manager")(config_manager_command)


def main() -> None:
    try:
        app()
    except GpuOperatorError as error:
        print(f"gpu-operator: {error}", file=sys.stderr)
        sys.exit(1)
