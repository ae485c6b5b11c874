"""The exporter process: sampler, XID watcher and pod-attribution timers in the background,
and an HTTP server whose ``/metrics`` only hands out the last rendered snapshot.

``/health`` answers ``OK`` while the sampler keeps up (a pass within three intervals), else
503 with the reason, so a wedged sampler gets the pod restarted instead of serving stale data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from gpu_operator.binding import cannot_listen
from gpu_operator.errors import GpuOperatorError
from gpu_operator.exporter.collectors_csv import Collectors
from gpu_operator.exporter.fields import CLOCK_EVENT_BITS, GPM_METRICS
from gpu_operator.exporter.httpd import Handler, HttpServer, Request, Response
from gpu_operator.exporter.pods import PodMeta, PodRef, pod_map, with_metadata
from gpu_operator.exporter.rendering import OWN, Renderer, RenderOptions
from gpu_operator.exporter.sampling import Pass, Sampler
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.exporter.webconfig import WebConfig
from gpu_operator.exporter.xids import XidTracker, XidWatcher
from gpu_operator.gpu import Nvml
from gpu_operator.listening import listen_address
from gpu_operator.podresources import ContainerDevices

log = logging.getLogger(__name__)

PodSource = Callable[[], Iterable[ContainerDevices]]
MAX_CLOCK_EVENT_PASSES = 100_000


class Exporter:
    """Everything but the HTTP server; ``step()`` is one sampling pass (tests call it)."""

    def __init__(
        self,
        nvml: Nvml,
        settings: ExporterSettings,
        collectors: Collectors,
        *,
        pod_source: PodSource | None = None,
        pod_meta: PodMeta | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self._clock = clock
        self.xids = XidTracker(settings.xid_window_ms, clock)
        gpm = [GPM_METRICS[name] for name in collectors.names if name in GPM_METRICS]
        self.sampler = Sampler(
            nvml,
            devices=settings.devices,
            gpm_metrics=gpm,
            energy_interval_s=settings.energy_interval_ms / 1000,
            clock=clock,
        )
        self.renderer = Renderer(
            collectors,
            RenderOptions(
                hostname=None if settings.no_hostname else settings.hostname,
                gpu_id_type=settings.kubernetes_gpu_id_type,
                replace_blanks_in_model_name=settings.replace_blanks_in_model_name,
                xid_window_ms=settings.xid_window_ms,
                clock_events_window_ms=settings.clock_events_window_ms,
                old_namespace=settings.use_old_namespace,
                pod_uid=settings.kubernetes_enable_pod_uid,
                pod_labels=settings.kubernetes_enable_pod_labels,
            ),
        )
        self._pod_source = pod_source
        self._pod_meta = pod_meta
        """Pod UID and labels, looked up only when a flag asks for them."""
        self._label_allowlist = settings.label_allowlist()
        self._pods: dict[str, PodRef] = {}
        self._clock_events: deque[tuple[float, int, int]] = deque(maxlen=MAX_CLOCK_EVENT_PASSES)
        self._lock = threading.Lock()
        self._last: Pass | None = None
        self._last_at: float | None = None
        self.body = b""
        self.scrapes = 0
        self.last_scrape_s = 0.0

    @property
    def attributes_pods(self) -> bool:
        """Whether pods are attributed (``-k``): the pod-attribution timer runs only then."""
        return self._pod_source is not None

    def step(self) -> Pass:
        sampled = self.sampler.sample(self.xids.view().last)
        now = self._clock()
        for gpu, reasons in sampled.clock_events.items():
            self._clock_events.append((now, gpu, reasons))
        with self._lock:
            self._last, self._last_at = sampled, now
        self._publish()
        return sampled

    def refresh_pods(self) -> None:
        """Re-read pod attribution (its own timer; never per scrape)."""
        if self._pod_source is None or self._last is None:
            return
        try:
            entries = list(self._pod_source())
        except (GpuOperatorError, OSError) as error:
            log.warning("pod attribution unavailable: %s", error)
            return
        pods = pod_map(
            entries,
            self._last.mig_parents,
            self.settings.nvidia_resource_names,
            self._last.dra_devices,
        )
        wanted = (
            self.settings.kubernetes_enable_pod_labels or self.settings.kubernetes_enable_pod_uid
        )
        if self._pod_meta is not None and wanted:
            try:
                pods = with_metadata(pods, self._pod_meta, self._label_allowlist)
            except (GpuOperatorError, OSError) as error:
                log.warning("pod labels and UIDs unavailable: %s", error)
        if pods != self._pods:
            self._pods = pods
            self._publish()

    def _clock_event_counts(self) -> dict[tuple[int, str], int]:
        cutoff = self._clock() - self.settings.clock_events_window_ms / 1000
        counts: dict[tuple[int, str], int] = {}
        for at, gpu, reasons in list(self._clock_events):
            if at < cutoff:
                continue
            for bit, name in CLOCK_EVENT_BITS.items():
                if reasons & bit:
                    counts[(gpu, name)] = counts.get((gpu, name), 0) + 1
        return counts

    def _publish(self) -> None:
        with self._lock:
            sampled = self._last
        if sampled is None:
            return
        body = self.renderer.render(
            sampled, self.xids.view(), self._clock_event_counts(), self._pods
        )
        self.body = body  # one reference swap: scrapes never see half a snapshot

    def health(self) -> tuple[bool, str]:
        with self._lock:
            last_at = self._last_at
        if last_at is None:
            return False, "no sample taken yet"
        age = self._clock() - last_at
        limit = 3 * self.settings.collect_interval_ms / 1000 + 10
        if age > limit:
            return False, f"last sample is {age:.0f} s old (limit {limit:.0f} s)"
        return True, "OK"

    def scrape(self) -> bytes:
        started = time.perf_counter()
        body = self.body
        tail = (
            f"# HELP {OWN}_scrapes_total Scrapes served.\n# TYPE {OWN}_scrapes_total counter\n"
            f"{OWN}_scrapes_total {self.scrapes + 1}\n"
            f"# HELP {OWN}_last_scrape_duration_seconds Time the previous scrape took to serve.\n"
            f"# TYPE {OWN}_last_scrape_duration_seconds gauge\n"
            f"{OWN}_last_scrape_duration_seconds {self.last_scrape_s:f}\n"
        ).encode()
        self.scrapes += 1
        self.last_scrape_s = time.perf_counter() - started
        return body + tail


class _Timer(threading.Thread):
    def __init__(
        self, name: str, interval_s: float, action: Callable[[], object], stopping: threading.Event
    ):
        super().__init__(name=name, daemon=True)
        self._interval_s = interval_s
        self._action = action
        self._stopping = stopping

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._action()
            except Exception:
                log.exception("%s failed", self.name)
            self._stopping.wait(max(0.0, self._interval_s - (time.monotonic() - started)))


INDEX = b"<html><body><h1>gpu-operator exporter</h1><a href='/metrics'>/metrics</a>"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNAUTHORIZED = Response(
    401, b"", headers=(("WWW-Authenticate", 'Basic realm="gpu-operator exporter"'),)
)


def make_handler(exporter: Exporter, web: WebConfig) -> Handler:
    """``/metrics`` (the snapshot), ``/health``, ``/`` and 404, behind basic auth if set."""

    def handle(request: Request) -> Response:
        if not web.authorized(request.headers.get("authorization")):
            return UNAUTHORIZED
        if request.path == "/metrics":
            return Response(200, exporter.scrape(), METRICS_TYPE)
        if request.path == "/health":
            ok, reason = exporter.health()
            return Response(200 if ok else 503, reason.encode())
        if request.path == "/":
            return Response(200, INDEX, "text/html; charset=utf-8")
        return Response(404, b"not found\n")

    return handle


class ExporterService:
    """The running exporter: timers plus the HTTP server; ``start()``, then ``stop()``."""

    def __init__(self, exporter: Exporter, nvml: Nvml, web: WebConfig | None = None):
        self.exporter = exporter
        self._stopping = threading.Event()
        settings = exporter.settings
        host, port = listen_address(*settings.listen())
        web = web or WebConfig()
        context = web.ssl_context()  # imports ssl only when the web config asks for TLS
        try:
            self.server = HttpServer(host, port, make_handler(exporter, web), context)
        except OSError as error:
            raise cannot_listen("--address", settings.address, error) from error
        self._threads: list[threading.Thread] = [
            _Timer("sampler", settings.collect_interval_ms / 1000, exporter.step, self._stopping),
            threading.Thread(target=self.server.serve, name="http", daemon=True),
        ]
        if exporter.attributes_pods:
            self._threads.append(
                _Timer(
                    "pod-attribution",
                    settings.pod_refresh_s,
                    exporter.refresh_pods,
                    self._stopping,
                )
            )
        self._xid_watcher = XidWatcher(nvml, exporter.xids)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.exporter.step()  # serve real data from the first scrape on
        self._xid_watcher.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._xid_watcher.stop()
        self.server.close()
        self._xid_watcher.join(timeout=2)
