"""``gpu-operator mig-manager``: the node agent that applies the MIG config named by the node's
MIG config label (``names.MIG_CONFIG_LABEL``; upstream's k8s-mig-manager env vars; see
docs/mig.md)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from gpu_operator import logs
from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.gpu import HardwareSettings
from gpu_operator.hostpaths import remap


def mig_manager_command(
    ctx: typer.Context,
    server: str | None = typer.Option(
        None, "--server", help="API server URL (default: in-cluster, $KUBECONFIG, ~/.kube/config)"
    ),
    kubeconfig: str | None = option(KUBECONFIG),
) -> None:
    """Watch this node's MIG config label and apply the layout it names (NODE_NAME required)."""
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.mig.manager import ManagerSettings, MigManager

    logs.setup(logging.INFO)
    settings = remap(
        ManagerSettings.from_env(),
        "config_file",
        "default_config_file",
        "host_root",
        "gpu_clients_file",
        "cdi_dir",
        "driver_root",
    )
    obj = ctx.obj
    hardware = obj if isinstance(obj, HardwareSettings) else HardwareSettings.from_env()
    client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig_path(kubeconfig)))
    stop = threading.Event()

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    try:
        MigManager(settings, client, hardware).run(stop)
    finally:
        client.close()
