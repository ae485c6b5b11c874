"""The operator's own Prometheus metrics (upstream's ``gpu_operator_*`` names) and its HTTP
endpoints: ``/metrics`` on the metrics port (8080), ``/healthz`` and ``/readyz`` on the health
port (8081). Values are plain fields the controller sets; rendering is a pure function."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gpu_operator.binding import cannot_listen
from gpu_operator.listening import listen_address
from gpu_operator.names import GPU_PRESENT_LABEL, NFD_PREFIX


@dataclass
class OperatorMetrics:
    gpu_nodes_total: int = 0
    reconciliation_status: int = 0  # 1 ready, 0 not ready, -1 failed
    reconciliation_total: int = 0
    reconciliation_failed_total: int = 0
    reconciliation_has_nfd_labels: int = 0
    reconciliation_last_success_ts_seconds: float = 0.0
    driver_auto_upgrade_enabled: int = 0
    api_writes_total: int = 0
    reconcile_cpu_seconds_total: float = 0.0
    nodes_upgrades_in_progress: int = 0
    nodes_upgrades_done: int = 0
    nodes_upgrades_failed: int = 0
    nodes_upgrades_available: int = 0
    nodes_upgrades_pending: int = 0
    synced: bool = False
    first_pass_done: bool = False
    """A reconcile pass has written its status (or this replica stands by for the leader): from
    then on the operator is ready, so a Deployment rollout waits for the policy's first status."""
    leading: bool = False

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        rows = [
            (
                "gpu_nodes_total",
                "gauge",
                f"GPU nodes ({GPU_PRESENT_LABEL}=true)",
                self.gpu_nodes_total,
            ),
            (
                "reconciliation_status",
                "gauge",
                "1: ClusterPolicy ready, 0: not ready, -1: reconcile failed",
                self.reconciliation_status,
            ),
            ("reconciliation_total", "counter", "Reconcile passes", self.reconciliation_total),
            (
                "reconciliation_failed_total",
                "counter",
                "Reconcile passes that failed",
                self.reconciliation_failed_total,
            ),
            (
                "reconciliation_has_nfd_labels",
                "gauge",
                f"1 when some node carries {NFD_PREFIX} labels",
                self.reconciliation_has_nfd_labels,
            ),
            (
                "reconciliation_last_success_ts_seconds",
                "gauge",
                "Unix time of the last successful pass",
                self.reconciliation_last_success_ts_seconds,
            ),
            (
                "driver_auto_upgrade_enabled",
                "gauge",
                "1 when driver.upgradePolicy.autoUpgrade is on",
                self.driver_auto_upgrade_enabled,
            ),
            (
                "api_writes_total",
                "counter",
                "Writes to the API server (patches, applies, deletes, status)",
                self.api_writes_total,
            ),
            (
                "reconcile_cpu_seconds_total",
                "counter",
                "CPU seconds spent deciding (the pure core)",
                self.reconcile_cpu_seconds_total,
            ),
            ("leader", "gauge", "1 while this replica holds the leader lease", int(self.leading)),
            *(
                (
                    f"nodes_upgrades_{what}",
                    "gauge",
                    f"GPU nodes whose driver upgrade is {what}",
                    getattr(self, f"nodes_upgrades_{what}"),
                )
                for what in ("in_progress", "done", "failed", "available", "pending")
            ),
        ]
        lines = []
        for name, kind, help_, value in rows:
            full = f"gpu_operator_{name}"
            lines += [f"# HELP {full} {help_}", f"# TYPE {full} {kind}", f"{full} {value:g}"]
        return "\n".join(lines) + "\n"


def metrics_app(metrics: OperatorMetrics) -> web.Application:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app


def health_app(metrics: OperatorMetrics) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        ready = metrics.synced and metrics.first_pass_done
        return web.Response(text="ok" if ready else "syncing", status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve_apps(
    apps: list[tuple[web.Application, str, int]], flags: tuple[str, ...] = ()
) -> list[web.AppRunner]:
    """Serve each app on its ``(host, port)``; an empty host is every interface. A port that
    can't be bound raises ``ConfigError`` naming the app's flag (``flags``, in order) and
    address, after the apps already started are stopped."""
    runners: list[web.AppRunner] = []
    for i, (app, host, port) in enumerate(apps):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        try:
            await web.TCPSite(runner, *listen_address(host, port)).start()
        except OSError as error:
            for started in runners:
                await started.cleanup()
            where = flags[i] if i < len(flags) else "listen address"
            raise cannot_listen(where, f"{host}:{port}", error) from error
    return runners
