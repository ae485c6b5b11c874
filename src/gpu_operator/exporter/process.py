"""The exporter as a process: dcgm-exporter's command line and environment in, metrics served
until SIGTERM. No CLI framework: ``gpu-operator exporter`` and ``dcgm-exporter`` come here
straight from ``gpu_operator.cli`` (typer is loaded only for ``--help``), and the flags are Go
flags parsed by ``flags``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpu_operator import logs
from gpu_operator.errors import ConfigError
from gpu_operator.exporter import flags
from gpu_operator.hostpaths import remap
from gpu_operator.signal_wait import wait_for_signal

if TYPE_CHECKING:
    from gpu_operator.exporter.settings import ExporterSettings
    from gpu_operator.gpu import HardwareSettings

log = logging.getLogger(__name__)

SUMMARY = "Serve GPU metrics in dcgm-exporter's format (no DCGM needed)."


def help_text() -> str:
    return (
        f"{SUMMARY}\n\n"
        "dcgm-exporter's flags, as Go parses them (-name or --name, =value or the next "
        "argument; a bare boolean is true, --name=false false); a flag beats its environment "
        "variable:\n\n" + flags.usage()
    )


def settings_from(given: flags.Parsed, env: Mapping[str, str]) -> ExporterSettings:
    """The settings the parsed flags give, after logging the flags given but not used."""
    from gpu_operator.exporter.settings import DeviceSelection, ExporterSettings

    log_format = given.text("log-format")
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format {log_format!r}: expected text or json")
    unused = list(given.unused)
    kubernetes = given.flag("kubernetes")
    pod_labels, pod_uid = (
        given.flag("kubernetes-enable-pod-labels"),
        given.flag("kubernetes-enable-pod-uid"),
    )
    if not kubernetes:
        unused += [
            f"--{name} (only with -k/--kubernetes)"
            for name, on in (
                ("kubernetes-enable-pod-labels", pod_labels),
                ("kubernetes-enable-pod-uid", pod_uid),
            )
            if on
        ]
    if log_format == "json":
        unused.append("--log-format=json (logs are text)")
    if unused:
        log.warning("accepted, not used by this exporter: %s", "; ".join(unused))
    collectors = Path(given.text("collectors")) if given.text("collectors") else None
    settings = ExporterSettings(
        address=given.text("address"),
        collect_interval_ms=given.number("collect-interval"),
        collectors=collectors,
        kubernetes=kubernetes,
        kubernetes_enable_pod_labels=kubernetes and pod_labels,
        kubernetes_enable_pod_uid=kubernetes and pod_uid,
        kubernetes_pod_label_allowlist_regex=given.items("kubernetes-pod-label-allowlist-regex"),
        kubernetes_gpu_id_type=given.text("kubernetes-gpu-id-type"),
        pod_resources_socket=Path(given.text("pod-resources-kubelet-socket")),
        nvidia_resource_names=given.items("nvidia-resource-names"),
        no_hostname=given.flag("no-hostname"),
        hostname=env.get("NODE_NAME") or socket.gethostname(),
        devices=DeviceSelection.parse(given.text("devices")),
        xid_window_ms=given.number("xid-count-window-size"),
        clock_events_window_ms=given.number("clock-events-count-window-size"),
        replace_blanks_in_model_name=given.flag("replace-blanks-in-model-name"),
        energy_interval_ms=given.number("energy-interval"),
        use_old_namespace=given.flag("use-old-namespace"),
    )
    return remap(settings, "pod_resources_socket", "collectors")


def run(args: Sequence[str], hardware: HardwareSettings) -> None:
    """Serve until SIGTERM or SIGINT; bad input raises ``ConfigError`` before anything starts."""
    given = flags.parse(list(args), os.environ)
    logs.setup(logging.DEBUG if given.flag("debug") else logging.INFO)
    settings = settings_from(given, os.environ)

    from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
    from gpu_operator.exporter.serving import Exporter, ExporterService
    from gpu_operator.exporter.webconfig import read_web_config
    from gpu_operator.gpu import Nvml

    table = read_collectors(settings.collectors or DEFAULT_COLLECTORS)
    for message in table.skipped:
        log.warning(message)
    web_config_file = given.text("web-config-file")
    web = read_web_config(Path(web_config_file)) if web_config_file else None
    with Nvml.open(hardware) as nvml:
        pod_source, pod_meta = None, None
        if settings.kubernetes:
            from gpu_operator.podresources import pod_resources_source

            pod_source = pod_resources_source(settings.pod_resources_socket)
        if settings.kubernetes_enable_pod_labels or settings.kubernetes_enable_pod_uid:
            from gpu_operator.exporter.pod_metadata import ApiPodMeta

            try:
                pod_meta = ApiPodMeta()
            except Exception as error:  # no API access: serve without, as upstream logs and goes on
                log.warning("pod labels and UIDs unavailable: no API client: %s", error)
        exporter = Exporter(nvml, settings, table, pod_source=pod_source, pod_meta=pod_meta)
        service = ExporterService(exporter, nvml, web)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        service.start()
        log.info("serving metrics on %s (port %d)", settings.address, service.port)
        wait_for_signal(done)
        service.stop()
