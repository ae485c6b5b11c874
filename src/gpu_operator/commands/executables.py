"""Upstream-named executables of our one image: each console script becomes one ``gpu-operator``
subcommand (by exec, so the CLI stays the single entry point), so an upstream pod spec
(``command: [nvidia-device-plugin]``) runs our image and ours runs NVIDIA's. The names are
listed in pyproject's ``[project.scripts]``."""

from __future__ import annotations

import os
import shutil
import sys

# console script -> the gpu-operator subcommand it runs
EXECUTABLES = {
    "nvidia-device-plugin": ("device-plugin",),
    "gpu-feature-discovery": ("feature-discovery",),
    "nvidia-mig-manager": ("mig-manager",),
    "nvidia-mig-parted": ("mig",),
    "nvidia-validator": ("validator",),
    "dcgm-exporter": ("exporter",),
    "nvidia-toolkit": ("toolkit", "install"),
    "vectorAdd": ("validator", "cuda-workload"),
    "driver-manager": ("driver-manager",),
    "gpu-node-labeler": ("node-labeler",),
    "config-manager": ("config-manager",),
}


def command_line(name: str, argv: list[str]) -> list[str]:
    """``nvidia-validator -c driver`` → ``gpu-operator validator -c driver``."""
    return ["gpu-operator", *EXECUTABLES[name], *argv]


# Upstream behaviour an executable has beyond its flags: the toolkit installer stays up and
# undoes its configuration on SIGTERM unless told otherwise.
DEFAULT_ENV = {"nvidia-toolkit": {"NO_DAEMON": "false"}}


def _run(name: str) -> None:
    for key, value in DEFAULT_ENV.get(name, {}).items():
        os.environ.setdefault(key, value)
    line = command_line(name, sys.argv[1:])
    binary = shutil.which("gpu-operator") or os.path.join(
        os.path.dirname(sys.argv[0]), "gpu-operator"
    )
    os.execv(binary, line)


def nvidia_device_plugin() -> None:
    _run("nvidia-device-plugin")


def gpu_feature_discovery() -> None:
    _run("gpu-feature-discovery")


def nvidia_mig_manager() -> None:
    _run("nvidia-mig-manager")


def nvidia_mig_parted() -> None:
    _run("nvidia-mig-parted")


def nvidia_validator() -> None:
    _run("nvidia-validator")


def dcgm_exporter() -> None:
    _run("dcgm-exporter")


def nvidia_toolkit() -> None:
    _run("nvidia-toolkit")


def vector_add() -> None:
    _run("vectorAdd")


def driver_manager() -> None:
    _run("driver-manager")


def gpu_node_labeler() -> None:
    _run("gpu-node-labeler")


def config_manager() -> None:
    _run("config-manager")
