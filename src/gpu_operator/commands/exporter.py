"""``gpu-operator exporter``: dcgm-exporter's flags and environment variables."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gpu_operator import logs
from gpu_operator.hostpaths import remap
from gpu_operator.podresources import SOCKET as POD_RESOURCES_SOCKET

if TYPE_CHECKING:  # the exporter's modules are imported when it runs, not for --help
    from gpu_operator.gpu import HardwareSettings

log = logging.getLogger(__name__)


def exporter_command(
    ctx: typer.Context,
    address: str = typer.Option(
        ":9400",
        "-a",
        "--address",
        envvar="DCGM_EXPORTER_LISTEN",
        help="Address to serve /metrics on.",
    ),
    collect_interval: int = typer.Option(
        30000,
        "-c",
        "--collect-interval",
        envvar="DCGM_EXPORTER_INTERVAL",
        help="Sampling interval in milliseconds.",
    ),
    collectors: Path | None = typer.Option(
        None,
        "-f",
        "--collectors",
        envvar="DCGM_EXPORTER_COLLECTORS",
        help="Counters CSV (default: the shipped default-counters.csv).",
    ),
    kubernetes: bool = typer.Option(
        False,
        "-k",
        "--kubernetes",
        envvar="DCGM_EXPORTER_KUBERNETES",
        help="Add pod, namespace and container labels from the kubelet.",
    ),
    gpu_id_type: str = typer.Option(
        "uid",
        "--kubernetes-gpu-id-type",
        envvar="DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE",
        help="How the device plugin names GPUs: uid or device-name.",
    ),
    pod_resources_socket: Path = typer.Option(
        Path(POD_RESOURCES_SOCKET),
        "--pod-resources-kubelet-socket",
        envvar="DCGM_POD_RESOURCES_KUBELET_SOCKET",
        help="The kubelet PodResources socket.",
    ),
    nvidia_resource_names: str = typer.Option(
        "",
        "--nvidia-resource-names",
        envvar="NVIDIA_RESOURCE_NAMES",
        help="Comma-separated extra resource names to attribute.",
    ),
    no_hostname: bool = typer.Option(False, "-n", "--no-hostname", help="Omit the Hostname label."),
    devices: str = typer.Option(
        "f",
        "-d",
        "--devices",
        envvar="DCGM_EXPORTER_DEVICES_STR",
        help="f (flex), g[:ids] (GPUs) or i[:ids] (GPU instances).",
    ),
    xid_window: int = typer.Option(
        300000, "-x", "--xid-count-window-size", help="Window of DCGM_EXP_XID_ERRORS_COUNT, ms."
    ),
    clock_window: int = typer.Option(
        300000,
        "--clock-events-count-window-size",
        help="Window of DCGM_EXP_CLOCK_EVENTS_COUNT, ms.",
    ),
    replace_blanks: bool = typer.Option(
        False,
        "-rbmn",
        "--replace-blanks-in-model-name",
        help="Replace spaces in modelName with dashes.",
    ),
    energy_interval: int = typer.Option(
        30000,
        "--energy-interval",
        envvar="GPU_OPERATOR_EXPORTER_ENERGY_INTERVAL",
        help="How often to read the slow energy counter, ms (ours).",
    ),
    web_config_file: Path | None = typer.Option(
        None, "--web-config-file", help="TLS and basic auth (exporter-toolkit format)."
    ),
    node_name: str = typer.Option("", envvar="NODE_NAME", hidden=True),
) -> None:
    """Serve GPU metrics in dcgm-exporter's format (no DCGM needed)."""
    from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
    from gpu_operator.exporter.serving import Exporter, ExporterService
    from gpu_operator.exporter.settings import DeviceSelection, ExporterSettings
    from gpu_operator.exporter.webconfig import read_web_config
    from gpu_operator.gpu import Nvml
    from gpu_operator.podresources import pod_resources_source

    logs.setup(logging.INFO)
    settings = ExporterSettings(
        address=address,
        collect_interval_ms=collect_interval,
        collectors=collectors,
        kubernetes=kubernetes,
        kubernetes_gpu_id_type=gpu_id_type,
        pod_resources_socket=pod_resources_socket,
        nvidia_resource_names=tuple(n for n in nvidia_resource_names.split(",") if n),
        no_hostname=no_hostname,
        hostname=node_name or socket.gethostname(),
        devices=DeviceSelection.parse(devices),
        xid_window_ms=xid_window,
        clock_events_window_ms=clock_window,
        replace_blanks_in_model_name=replace_blanks,
        energy_interval_ms=energy_interval,
    )
    settings = remap(settings, "pod_resources_socket", "collectors")
    table = read_collectors(collectors or DEFAULT_COLLECTORS)
    for message in table.skipped:
        log.warning(message)
    web = read_web_config(web_config_file) if web_config_file else None
    hardware: HardwareSettings = ctx.obj
    with Nvml.open(hardware) as nvml:
        pod_source = None
        if kubernetes:
            pod_source = pod_resources_source(settings.pod_resources_socket)
        service = ExporterService(Exporter(nvml, settings, table, pod_source=pod_source), nvml, web)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        service.start()
        log.info("serving metrics on %s (port %d)", address, service.port)
        done.wait()
        service.stop()
