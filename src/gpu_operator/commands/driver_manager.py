"""``gpu-operator driver-manager`` (upstream executable name ``driver-manager``): the driver pod's
init container, with k8s-driver-manager's commands and env vars (see docs/driver.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from gpu_operator import logs
from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.errors import ConfigError

COMMANDS = ("uninstall_driver", "preflight_check")


def driver_manager_command(
    command: str = typer.Argument(
        "uninstall_driver", help="uninstall_driver (the init container) or preflight_check."
    ),
    server: str | None = typer.Option(
        None, "--server", help="API server URL (default: in-cluster, $KUBECONFIG, ~/.kube/config)"
    ),
    kubeconfig: str | None = option(KUBECONFIG),
) -> None:
    """Prepare this node for the driver container (NODE_NAME required; upstream env vars)."""
    if command not in COMMANDS:
        raise ConfigError(
            f"driver-manager: unknown command {command!r}; use {' or '.join(COMMANDS)}"
        )
    from gpu_operator.driver.manager import ManagerSettings
    from gpu_operator.driver.managing import DriverManager, HostPaths
    from gpu_operator.kube import KubeSettings, build_client

    logs.setup(logging.INFO)
    settings = ManagerSettings.from_env()
    client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig_path(kubeconfig)))
    paths = HostPaths(host_root=Path(settings.host_root))
    try:
        agent = DriverManager(settings, client, paths)
        if command == "preflight_check":
            agent.check_pre_installed()
        else:
            mode = agent.uninstall_driver()
            typer.echo(f"driver-manager: {settings.node_name}: {mode.value}")
    finally:
        client.close()
