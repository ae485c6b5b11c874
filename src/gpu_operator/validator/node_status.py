"""The ``metrics`` component (upstream's node-status-exporter): readiness gauges on
``:METRICS_PORT/metrics`` with upstream names, each labelled ``node``. Status-file presence is
read at scrape time; the driver check re-runs every 60 s and the device count every 30 s in a
background thread, so a scrape only renders the last readings."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gpu_operator.binding import cannot_listen
from gpu_operator.listening import listen_address
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.status import CUDA_READY, DRIVER_READY, PLUGIN_READY, TOOLKIT_READY

READY_GAUGES = {
    "gpu_operator_node_driver_ready": DRIVER_READY,
    "gpu_operator_node_toolkit_ready": TOOLKIT_READY,
    "gpu_operator_node_plugin_ready": PLUGIN_READY,
    "gpu_operator_node_cuda_ready": CUDA_READY,
}


@dataclass
class Readings:
    """What the background checks last found (-1: the check errored)."""

    started: float = field(default_factory=time.time)
    driver_ok: bool = False
    driver_last_success: float = 0.0
    devices_total: int = -1
    devices_last_success: float = 0.0
    pci_devices_total: int = -1


def count_pci_nvidia(run: Callable[[list[str]], str] | None = None) -> int:
    """``lspci`` lines mentioning NVIDIA (-1 when lspci fails)."""
    try:
        out = (run or _lspci)(["lspci"])
    except (OSError, subprocess.SubprocessError):
        return -1
    return sum("nvidia" in line.lower() for line in out.splitlines())


def _lspci(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


def render(node: str, output_dir: Path, readings: Readings) -> str:
    """The exposition text (Prometheus 0.0.4)."""
    label = f'{{node="{node}"}}'
    lines: list[str] = []

    def gauge(name: str, help_text: str, value: float) -> None:
        lines.extend(
            [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{label} {value:g}"]
        )

    gauge(
        "gpu_operator_node_metrics_ready_ts_seconds",
        "Timestamp of the exporter's start",
        readings.started,
    )
    for name, file in READY_GAUGES.items():
        gauge(name, f"1 when {file} exists in {output_dir}", float((output_dir / file).exists()))
    gauge(
        "gpu_operator_node_driver_validation",
        "1 when the last driver check passed",
        float(readings.driver_ok),
    )
    gauge(
        "gpu_operator_node_driver_validation_last_success_ts_seconds",
        "Timestamp of the last passing driver check",
        readings.driver_last_success,
    )
    gauge(
        "gpu_operator_node_device_plugin_devices_total",
        "GPU resources the node advertises (-1 on error)",
        readings.devices_total,
    )
    gauge(
        "gpu_operator_node_device_plugin_validation_last_success_ts_seconds",
        "Timestamp of the last device count",
        readings.devices_last_success,
    )
    gauge(
        "gpu_operator_nvidia_pci_devices_total",
        "NVIDIA PCI devices lspci lists (-1 on error)",
        readings.pci_devices_total,
    )
    return "\n".join(lines) + "\n"


class NodeStatusExporter:
    """Runs the periodic checks and serves ``/metrics``."""

    def __init__(
        self,
        node: str,
        output_dir: Path,
        *,
        driver_check: Callable[[], object],
        device_count: Callable[[], int],
        pci_count: Callable[[], int] = count_pci_nvidia,
        driver_every_s: float = 60.0,
        devices_every_s: float = 30.0,
    ):
        self.node = node
        self.output_dir = output_dir
        self.readings = Readings()
        self._driver_check = driver_check
        self._device_count = device_count
        self._pci_count = pci_count
        self._every = (driver_every_s, devices_every_s)
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def check_driver(self) -> None:
        try:
            self._driver_check()
        except ValidationFailed:
            self.readings.driver_ok = False
            return
        self.readings.driver_ok = True
        self.readings.driver_last_success = time.time()

    def count_devices(self) -> None:
        try:
            self.readings.devices_total = self._device_count()
            self.readings.devices_last_success = time.time()
        except Exception:  # any failure of the count is reported as -1, never a crash
            self.readings.devices_total = -1
        self.readings.pci_devices_total = self._pci_count()

    def _loop(self) -> None:
        next_driver = next_devices = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_driver:
                self.check_driver()
                next_driver = now + self._every[0]
            if now >= next_devices:
                self.count_devices()
                next_devices = now + self._every[1]
            self._stop.wait(max(0.05, min(next_driver, next_devices) - time.monotonic()))

    def serve(self, port: int, host: str = "") -> int:
        """Start checking and serving (background threads); the bound port."""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = render(exporter.node, exporter.output_dir, exporter.readings).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer(listen_address(host, port), Handler)
        except OSError as error:
            raise cannot_listen("--metrics-port", f"{host}:{port}", error) from error
        threading.Thread(target=self._loop, daemon=True).start()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
