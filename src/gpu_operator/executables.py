"""Upstream-named executables of our one image: which ``gpu-operator`` subcommand each runs, so
an upstream pod spec (``command: [nvidia-device-plugin]``) runs our image and ours runs NVIDIA's.
The names are listed in pyproject's ``[project.scripts]``; their entry points are in
``gpu_operator.cli`` (the subcommand runs in the same process, importing only its own module).
A leaf: the CLI, ``config-manager`` and the sandbox's pod runner read it."""

from __future__ import annotations

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
