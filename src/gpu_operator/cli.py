"""The ``gpu-operator`` command: one CLI, one subcommand per operand or admin tool.

Each subcommand's module is imported when that subcommand runs (or shows its ``--help``), never
before: an agent's process holds what the agent uses and nothing else (``gpu-operator
exporter`` loads no sandbox, operator or Kubernetes client), and starts in a fraction of the
time the whole CLI took. ``gpu-operator --help`` lists the commands from the table below without
importing any of them. Help is plain text (typer's rich help formatting alone costs ~0.2 s).
The typer app itself (``gpu_operator.commands.root``) is built only when a command needs it: a
command with a plain runner (the exporter) starts without any CLI framework.

Every ``GpuOperatorError`` becomes one line on stderr and exit status 1; usage errors exit 2;
no traceback reaches the user for a user error.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    runner: str | None = None
    """``module:function``, called with the arguments after the command's name and the
    ``HardwareSettings``, that runs the command without typer (``main`` calls it unless
    ``--help`` is asked for); ``None``: typer parses the command's arguments."""


COMMANDS: dict[str, Lazy] = {
    "gpus": Lazy(
        "gpu_operator.commands.gpus:gpus_command",
        "Show the node's GPUs (real, or simulated with --sim / GPU_OPERATOR_SIM).",
    ),
    "exporter": Lazy(
        "gpu_operator.commands.exporter:exporter_command",
        "Serve GPU metrics in dcgm-exporter's format (no DCGM needed).",
        "CONTEXT_SETTINGS",
        "gpu_operator.exporter.process:run",
    ),
    "device-plugin": Lazy(
        "gpu_operator.commands.device_plugin:device_plugin_command",
        "Run the NVIDIA device plugin: advertise GPUs and MIG devices to the kubelet.",
        "CONTEXT_SETTINGS",
        "gpu_operator.deviceplugin.process:run",
    ),
    "dra-driver": Lazy(
        "gpu_operator.commands.dra_driver:dra_driver_command",
        "Run the DRA kubelet plugin gpu.nvidia.com: GPUs as ResourceSlices, claims as CDI specs.",
    ),
    "feature-discovery": Lazy(
        "gpu_operator.commands.feature_discovery:feature_discovery_command",
        "Label the node's GPUs as gpu-feature-discovery does (nvidia.com/gpu.*, mig*, cuda.*).",
        "CONTEXT_SETTINGS",
        "gpu_operator.discovery.process:run",
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


@functools.cache
def typer_app() -> Any:
    """The typer app (``gpu_operator.commands.root``), built on first use."""
    from gpu_operator.commands.root import build

    return build(COMMANDS)


def __getattr__(name: str) -> Any:
    """``app``: the typer app, for callers that drive it (typer's test runner)."""
    if name == "app":
        return typer_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def plain_runner(args: list[str]) -> Callable[[], None] | None:
    """The command ``args`` name run without typer, if it has a plain runner and no ``--help``
    is asked for: ``[--sim SPEC] exporter -a :9400`` → ``exporter.process.run``. ``None``:
    typer parses ``args`` (anything else before the command, or an unknown command)."""
    sim: str | None = None
    i = 0
    while i < len(args) and args[i].startswith("--sim"):
        if args[i] == "--sim" and i + 1 < len(args):
            sim, i = args[i + 1], i + 2
        elif args[i].startswith("--sim="):
            sim, i = args[i].removeprefix("--sim="), i + 1
        else:
            return None
    entry = COMMANDS.get(args[i]) if i < len(args) else None
    if entry is None or entry.runner is None or "--help" in args[i + 1 :]:
        return None
    module_name, attribute = entry.runner.split(":")
    rest = args[i + 1 :]

    def run() -> None:
        from gpu_operator.gpu.backend import HardwareSettings

        hardware = HardwareSettings.from_env(sim=sim)
        getattr(importlib.import_module(module_name), attribute)(rest, hardware)

    return run


def main(argv: list[str] | None = None) -> None:
    """Run the CLI on ``argv`` (default: the process's arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        runner = plain_runner(args)
        if runner is not None:
            runner()
        else:
            typer_app()(args=args, prog_name="gpu-operator")
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
