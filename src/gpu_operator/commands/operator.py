"""``gpu-operator operator``: the controller — reads the ClusterPolicy, labels GPU nodes, applies
every operand, reports status; metrics on :8080, health on :8081, leader election by Lease.
Flags are upstream's (``--leader-elect``, ``--zap-log-level``, ``--zap-time-encoding``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import typer

from gpu_operator import logs
from gpu_operator.cli_settings import KUBECONFIG, OPERATOR_NAMESPACE, option, setting
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.driver.upgrading import UpgradeSettings, upgrade_step
from gpu_operator.errors import ConfigError
from gpu_operator.kube import KubeSettings, build_async_client, build_client
from gpu_operator.operator.controller import Controller, ControllerSettings
from gpu_operator.operator.images import IMAGE_ENV
from gpu_operator.operator.leader import LeaderElector, LeaderSettings
from gpu_operator.operator.metrics import OperatorMetrics, health_app, metrics_app, serve_apps

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _address(address: str, flag: str) -> tuple[str, int]:
    """``:8080`` → ("", 8080) (every interface), ``127.0.0.1:8080`` → ("127.0.0.1", 8080)."""
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError as error:
        raise ConfigError(f"{flag}: expected [HOST]:PORT, got {address!r}") from error


async def _main(
    kube: KubeSettings,
    settings: ControllerSettings,
    leader: LeaderSettings | None,
    addresses: tuple[tuple[str, int], tuple[str, int]],
) -> None:
    client = build_async_client(kube)
    sync_client = build_client(kube)  # the driver upgrade controller's calls run in a thread
    metrics = OperatorMetrics()
    elector = LeaderElector(client, leader) if leader else None
    upgrades = UpgradeSettings(namespace=settings.namespace)
    controller = Controller(
        client,
        settings,
        elector=elector,
        metrics=metrics,
        upgrader=lambda policy: upgrade_step(sync_client, policy, upgrades),
    )
    runners = await serve_apps(
        [(metrics_app(metrics), *addresses[0]), (health_app(metrics), *addresses[1])],
        flags=("--metrics-bind-address", "--health-probe-bind-address"),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await controller.run(stop, renew_s=leader.renew_s if leader else 5.0)
    finally:
        for runner in runners:
            await runner.cleanup()
        await client.close()
        sync_client.close()


def operator_command(
    leader_elect: bool = typer.Option(False, "--leader-elect", help="Lease-based leader election."),
    log_level: str = typer.Option("info", "--zap-log-level", help="debug, info, warn, error."),
    time_encoding: str = typer.Option("epoch", "--zap-time-encoding", help="Accepted (upstream)."),
    devel: bool = typer.Option(
        False, "--zap-devel", help="Development logging (upstream's develMode): debug level."
    ),
    metrics_address: str = typer.Option(":8080", "--metrics-bind-address"),
    health_address: str = typer.Option(":8081", "--health-probe-bind-address"),
    namespace: str | None = option(
        OPERATOR_NAMESPACE, help="Operands' namespace.", default="gpu-operator"
    ),
    kubeconfig: str | None = option(KUBECONFIG),
    server: str | None = typer.Option(
        None, "--server", help="API server URL (e.g. the sandbox's)."
    ),
) -> None:
    """Run the operator (the ClusterPolicy controller)."""
    if log_level not in LEVELS:
        raise ConfigError(
            f"--zap-log-level: expected one of {', '.join(LEVELS)}, got {log_level!r}"
        )
    operands: str = setting(OPERATOR_NAMESPACE, namespace, "gpu-operator")
    kubeconfig_file = kubeconfig_path(kubeconfig)
    logs.setup(logging.DEBUG if devel else LEVELS[log_level])
    environ = {env: os.environ[env] for env in set(IMAGE_ENV.values()) if os.environ.get(env)}
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    leader = LeaderSettings(identity=identity, namespace=operands) if leader_elect else None
    addresses = (
        _address(metrics_address, "--metrics-bind-address"),
        _address(health_address, "--health-probe-bind-address"),
    )
    kube = KubeSettings(server=server, kubeconfig=kubeconfig_file)
    asyncio.run(
        _main(kube, ControllerSettings(namespace=operands, environ=environ), leader, addresses)
    )
