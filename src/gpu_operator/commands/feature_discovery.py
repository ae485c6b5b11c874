"""``gpu-operator feature-discovery``: gpu-feature-discovery's command line (flags and
environment variables as upstream), the writers it selects, and the signal-driven loop.

Writers: the ``NodeFeature`` object (``--use-node-feature-api``, upstream's default) or the NFD
feature file (``--output-file``, ``-`` = stdout); plus, ours, direct node labels with
``--write-node-labels``. Precedence: flag > environment variable > config file.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import typer

from gpu_operator import logs
from gpu_operator.discovery.loop import SignalWaiter, Writer, run
from gpu_operator.discovery.settings import DiscoverySettings, load_settings
from gpu_operator.discovery.writers import FeatureFileWriter
from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings
from gpu_operator.hostpaths import host_str, remap


def _opt(*names: str, env: str, help: str) -> Any:
    return typer.Option(None, *names, help=f"{help} Env: {env}.", show_default=False)


def _flag(name: str, *, env: str, help: str) -> Any:
    """A boolean flag with its ``--no-`` form; ``None`` when neither is given, so the
    environment and the config file still count (``--flag=false`` is spelled ``--no-flag``)."""
    return typer.Option(
        None, f"--{name}/--no-{name}", help=f"{help} Env: {env}.", show_default=False
    )


def _settings(flags: dict[str, Any], env: dict[str, str]) -> DiscoverySettings:
    """The settings, with container paths mapped to this host's (``gpu_operator.hostpaths``)."""
    settings = load_settings(flags, env, locate=host_str)
    return remap(settings, "output_file", "machine_type_file", "config_file")


def make_writers(settings: DiscoverySettings) -> list[Writer]:
    """The writers ``settings`` select (Kubernetes ones connect through ``KUBECONFIG`` or the
    in-cluster service account)."""
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


def feature_discovery_command(
    ctx: typer.Context,
    mig_strategy: str | None = _opt(
        "--mig-strategy",
        env="GFD_MIG_STRATEGY, MIG_STRATEGY",
        help="How MIG devices are labelled: none, single or mixed.",
    ),
    fail_on_init_error: bool | None = _flag(
        "fail-on-init-error",
        env="GFD_FAIL_ON_INIT_ERROR",
        help="Exit when NVML can't start (no: label without GPUs).",
    ),
    oneshot: bool | None = typer.Option(
        None, "--oneshot", help="Label once and exit. Env: GFD_ONESHOT.", show_default=False
    ),
    no_timestamp: bool | None = typer.Option(
        None,
        "--no-timestamp",
        help="Leave out nvidia.com/gfd.timestamp. Env: GFD_NO_TIMESTAMP.",
        show_default=False,
    ),
    sleep_interval: str | None = _opt(
        "--sleep-interval",
        env="GFD_SLEEP_INTERVAL",
        help="Time between labelling runs (Go duration, default 60s) or 'infinite'.",
    ),
    output_file: str | None = _opt(
        "--output-file",
        "-o",
        env="GFD_OUTPUT_FILE",
        help="NFD feature file ('-' = stdout); default "
        "/etc/kubernetes/node-feature-discovery/features.d/gfd.",
    ),
    machine_type_file: str | None = _opt(
        "--machine-type-file",
        env="GFD_MACHINE_TYPE_FILE",
        help="File holding the machine type (default /sys/class/dmi/id/product_name).",
    ),
    use_node_feature_api: bool | None = _flag(
        "use-node-feature-api",
        env="GFD_USE_NODE_FEATURE_API, USE_NODE_FEATURE_API",
        help="Write a NodeFeature object instead of the file (default: yes, unless an "
        "output file is given).",
    ),
    write_node_labels: bool | None = _flag(
        "write-node-labels",
        env="GPU_OPERATOR_GFD_NODE_LABELS",
        help="Also label the node directly (clusters without NFD); touches only its own keys.",
    ),
    config_file: str | None = _opt(
        "--config-file",
        env="GFD_CONFIG_FILE, CONFIG_FILE",
        help="The device plugin's v1 config (MIG strategy, sharing, flags.gfd).",
    ),
    node_name: str | None = _opt("--node-name", env="NODE_NAME", help="This node's name."),
    namespace: str | None = _opt(
        "--namespace", env="NAMESPACE", help="Namespace of the NodeFeature object."
    ),
    pod_name: str | None = _opt(
        "--pod-name", env="POD_NAME", help="This pod (owner of the NodeFeature object)."
    ),
    sysfs_root: str | None = typer.Option(None, "--sysfs-root", hidden=True),
    device_discovery_strategy: str | None = _opt(
        "--device-discovery-strategy",
        env="DEVICE_DISCOVERY_STRATEGY",
        help="auto or nvml (tegra and vfio are not supported).",
    ),
) -> None:
    """Label the node's GPUs as gpu-feature-discovery does (nvidia.com/gpu.*, mig*, cuda.*)."""
    logs.setup(logging.INFO)
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "device_discovery_strategy")}
    strategy = device_discovery_strategy or os.environ.get("DEVICE_DISCOVERY_STRATEGY", "auto")
    if strategy not in ("auto", "nvml"):
        raise ConfigError(
            f"--device-discovery-strategy: {strategy!r} is not supported (auto or nvml)"
        )
    env = dict(os.environ)
    hardware: HardwareSettings = ctx.obj
    waiter = SignalWaiter()
    first = _settings(flags, env)
    if not first.oneshot:
        waiter.block()
    loaded = [first]

    def load() -> DiscoverySettings:
        # The first run uses the settings checked above; a SIGHUP re-reads everything.
        return loaded.pop() if loaded else _settings(flags, dict(os.environ))

    run(load, make_writers, hardware, waiter)
