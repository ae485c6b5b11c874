"""``gpu-operator dra-driver``: NVIDIA's DRA kubelet plugin for GPUs (``gpu-kubelet-plugin`` of
``k8s-dra-driver-gpu``, driver ``gpu.nvidia.com``), flags and environment variables as
upstream's. SIGTERM, SIGINT, SIGQUIT and SIGHUP stop it (as upstream): sockets removed, this
node's ResourceSlices deleted. Full GPUs, and MIG devices with ``--feature-gates
DynamicMIG=true``; see docs/dra.md."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import typer

from gpu_operator import logs
from gpu_operator.commands.options import env_option as _opt
from gpu_operator.hostpaths import remap
from gpu_operator.signal_wait import wait_for_signal

if TYPE_CHECKING:  # imported where used, so that --help loads neither gRPC nor lightkube
    from gpu_operator.dra.settings import DraSettings
    from gpu_operator.gpu import HardwareSettings

log = logging.getLogger("gpu_operator.dra")


def load_settings(flags: dict[str, Any], env: dict[str, str]) -> DraSettings:
    from gpu_operator.dra.settings import resolve_settings

    settings = resolve_settings(flags, env)
    return remap(
        settings,
        "cdi_root",
        "container_driver_root",
        "kubelet_registrar_directory_path",
        "kubelet_plugins_directory_path",
        "kubeconfig",
    )


def run(flags: dict[str, Any], hardware: HardwareSettings) -> None:
    """Serve until a stop signal."""
    from pathlib import Path

    from gpu_operator.dra.kubeapi import ClaimReader, SlicePublisher
    from gpu_operator.dra.plugin import DraDriver
    from gpu_operator.kube import KubeSettings, build_client

    settings = load_settings(flags, dict(os.environ))
    stop = threading.Event()

    def on_stop(signum: int, _: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(sig, on_stop)
    kubeconfig = Path(settings.kubeconfig) if settings.kubeconfig else None
    client = build_client(KubeSettings(kubeconfig=kubeconfig))
    driver = DraDriver(
        settings, hardware, publisher=SlicePublisher(client), claims=ClaimReader(client)
    )
    driver.start()
    try:
        wait_for_signal(stop)
    finally:
        driver.stop(clean=True)


def dra_driver_command(
    ctx: typer.Context,
    node_name: str | None = _opt(
        "--node-name", env="NODE_NAME", help="The name of the node to be worked on (required)."
    ),
    namespace: str | None = _opt(
        "--namespace", env="NAMESPACE", help="The namespace used for the custom resources."
    ),
    cdi_root: str | None = _opt(
        "--cdi-root", env="CDI_ROOT", help="Where CDI files are written (default /etc/cdi)."
    ),
    driver_root: str | None = _opt(
        "--nvidia-driver-root",
        "--host_driver-root",
        env="NVIDIA_DRIVER_ROOT, HOST_DRIVER_ROOT",
        help="The NVIDIA driver's root on the host (default /).",
    ),
    container_driver_root: str | None = _opt(
        "--container-driver-root",
        env="DRIVER_ROOT_CTR_PATH",
        help="Where the driver root is mounted in this container (default /driver-root).",
    ),
    nvidia_cdi_hook_path: str | None = _opt(
        "--nvidia-cdi-hook-path",
        env="NVIDIA_CDI_HOOK_PATH",
        help="nvidia-cdi-hook on the host, for the CDI specs (default /usr/bin/nvidia-cdi-hook).",
    ),
    kubelet_registrar_directory_path: str | None = _opt(
        "--kubelet-registrar-directory-path",
        env="KUBELET_REGISTRAR_DIRECTORY_PATH",
        help="The kubelet's plugin registration directory "
        "(default /var/lib/kubelet/plugins_registry).",
    ),
    kubelet_plugins_directory_path: str | None = _opt(
        "--kubelet-plugins-directory-path",
        env="KUBELET_PLUGINS_DIRECTORY_PATH",
        help="The kubelet's plugin data directory (default /var/lib/kubelet/plugins).",
    ),
    kubeconfig: str | None = _opt(
        "--kubeconfig", env="KUBECONFIG", help="A kubeconfig (default: in-cluster)."
    ),
    feature_gates: str | None = _opt(
        "--feature-gates",
        env="FEATURE_GATES",
        help="Feature gates, Name=true|false,... (DynamicMIG=true: MIG devices created on "
        "prepare on GPUs with MIG mode on).",
    ),
) -> None:
    """Run the DRA kubelet plugin gpu.nvidia.com: publish this node's GPUs as a ResourceSlice
    and prepare ResourceClaims (CDI specs). Health: DP_DISABLE_HEALTHCHECKS,
    DP_ENABLE_HEALTHCHECKS, DP_HEALTH_RECOVERY as for the device plugin."""
    flags: dict[str, Any] = {k: v for k, v in locals().items() if k != "ctx"}
    logs.setup(logging.INFO)
    run(flags, ctx.obj)
