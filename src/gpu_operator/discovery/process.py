"""Feature discovery as a process: ``gpu-feature-discovery``'s command line in, labels written
until SIGTERM. ``gpu-operator feature-discovery`` and ``gpu-feature-discovery`` come here
straight from ``gpu_operator.cli`` without a CLI framework (``deviceplugin.argv``); ``--help``
is typer's (``gpu_operator.commands.feature_discovery``, which declares the same options).

Writers: the ``NodeFeature`` object (``--use-node-feature-api``, upstream's default) or the NFD
feature file (``--output-file``, ``-`` = stdout); plus, ours, direct node labels with
``--write-node-labels``. Precedence: flag > environment variable > config file.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from gpu_operator import logs
from gpu_operator.booleans import parse_bool
from gpu_operator.deviceplugin.argv import UsageError, parse, usage_error
from gpu_operator.errors import ConfigError
from gpu_operator.hostpaths import host_str, remap

if TYPE_CHECKING:  # imported where used: a usage error loads no NVML
    from gpu_operator.discovery.loop import Writer
    from gpu_operator.discovery.settings import DiscoverySettings
    from gpu_operator.gpu import HardwareSettings

OPTIONS = {
    "--mig-strategy": "mig_strategy",
    "--sleep-interval": "sleep_interval_s",
    "--output-file": "output_file",
    "-o": "output_file",
    "--machine-type-file": "machine_type_file",
    "--config-file": "config_file",
    "--node-name": "node_name",
    "--namespace": "namespace",
    "--pod-name": "pod_name",
    "--sysfs-root": "sysfs_root",
    "--device-discovery-strategy": "device_discovery_strategy",
}
"""Value options → field (the typer command declares the same; a test holds them equal)."""
BOOL_FLAGS = {
    "--fail-on-init-error": "fail_on_init_error",
    "--oneshot": "oneshot",
    "--no-timestamp": "no_timestamp",
    "--use-node-feature-api": "use_node_feature_api",
    "--write-node-labels": "write_node_labels",
}
"""Boolean flags as urfave/cli takes them: bare (``--oneshot``) or with a value
(``--oneshot=false``, Go's ``strconv.ParseBool`` words)."""
NEGATED = {"--no-fail-on-init-error", "--no-use-node-feature-api", "--no-write-node-labels"}
"""Ours, kept from earlier releases: ``--no-X`` is ``--X=false``."""


def read_flag(name: str, value: str | None) -> tuple[str, bool]:
    """A boolean flag's field and value; a bad value is a ``ConfigError`` naming the flag."""
    if name in NEGATED:
        if value is not None:
            raise UsageError(f"no such option: {name}={value}")
        return BOOL_FLAGS["--" + name.removeprefix("--no-")], False
    return BOOL_FLAGS[name], parse_bool(value, name) if value is not None else True


def parse_args(args: list[str]) -> dict[str, Any]:
    """The flags ``args`` give (every field present, ``None`` = not given); ``UsageError``."""
    readers = {
        name: (lambda value, name=name: read_flag(name, value)) for name in (*BOOL_FLAGS, *NEGATED)
    }
    flags: dict[str, Any] = dict.fromkeys(OPTIONS.values())
    flags.update(parse(args, OPTIONS, readers))
    return flags


def settings(flags: dict[str, Any], env: dict[str, str]) -> DiscoverySettings:
    """The settings, with container paths mapped to this host's (``gpu_operator.hostpaths``)."""
    from gpu_operator.discovery.settings import load_settings

    loaded = load_settings(flags, env, locate=host_str)
    return remap(loaded, "output_file", "machine_type_file", "config_file")


def make_writers(settings: DiscoverySettings) -> list[Writer]:
    """The writers ``settings`` select (Kubernetes ones connect through ``KUBECONFIG`` or the
    in-cluster service account)."""
    from gpu_operator.discovery.writers import FeatureFileWriter

    writers: list[Writer] = []
    if settings.use_node_feature_api or settings.write_node_labels:
        from gpu_operator.discovery.kube_writers import NodeFeatureWriter, NodeLabelWriter

        if not settings.node_name:
            raise ConfigError(
                "NODE_NAME (--node-name) is not set: the NodeFeature and node-label writers "
                "need the node's name (or write the NFD file: --output-file PATH, '-' = stdout)"
            )
        from gpu_operator.kube import KubeSettings, build_client

        client = build_client(KubeSettings())
        if settings.use_node_feature_api:
            writers.append(
                NodeFeatureWriter(
                    client, settings.node_name or "", settings.namespace, settings.pod_name
                )
            )
        if settings.write_node_labels:
            writers.append(NodeLabelWriter(client, settings.node_name or ""))
    if not settings.use_node_feature_api:
        writers.append(FeatureFileWriter(settings.output_file))
    return writers


def serve(flags: dict[str, Any], hardware: HardwareSettings) -> None:
    """Label until stopped (or once, with ``--oneshot``); SIGHUP re-reads the settings."""
    flags = dict(flags)
    chosen = flags.pop("device_discovery_strategy", None)
    strategy = chosen or os.environ.get("DEVICE_DISCOVERY_STRATEGY", "auto")
    if strategy not in ("auto", "nvml"):
        raise ConfigError(
            f"--device-discovery-strategy: {strategy!r} is not supported (auto or nvml)"
        )
    from gpu_operator.discovery.loop import SignalWaiter, run

    waiter = SignalWaiter()
    first = settings(flags, dict(os.environ))
    if not first.oneshot:
        waiter.block()
    loaded = [first]

    def load() -> DiscoverySettings:
        # The first run uses the settings checked above; a SIGHUP re-reads everything.
        return loaded.pop() if loaded else settings(flags, dict(os.environ))

    run(load, make_writers, hardware, waiter)


def run(args: list[str], hardware: HardwareSettings) -> None:
    """``gpu-operator feature-discovery ARGS`` without typer (``gpu_operator.cli``'s runner)."""
    logs.setup(logging.INFO)
    try:
        flags = parse_args(args)
    except UsageError as error:
        usage_error("feature-discovery", error)
    serve(flags, hardware)
