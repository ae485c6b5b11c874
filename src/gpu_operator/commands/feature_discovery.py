"""``gpu-operator feature-discovery``: gpu-feature-discovery's command line (flags and
environment variables as upstream), the writers it selects, and the signal-driven loop.

Writers: the ``NodeFeature`` object (``--use-node-feature-api``, upstream's default) or the NFD
feature file (``--output-file``, ``-`` = stdout); plus, ours, direct node labels with
``--write-node-labels``. Precedence: flag > environment variable > config file.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import typer

from gpu_operator import logs
from gpu_operator.booleans import parse_bool
from gpu_operator.errors import ConfigError
from gpu_operator.hostpaths import host_str, remap
from gpu_operator.names import NFD_FEATURES_DIR

if TYPE_CHECKING:  # imported where used, so that --help loads neither NVML nor the config model
    from gpu_operator.discovery.loop import Writer
    from gpu_operator.discovery.settings import DiscoverySettings
    from gpu_operator.gpu import HardwareSettings


def _opt(*names: str, env: str, help: str) -> Any:
    return typer.Option(None, *names, help=f"{help} Env: {env}.", show_default=False)


BOOL_FLAGS = {
    "--fail-on-init-error": "fail_on_init_error",
    "--oneshot": "oneshot",
    "--no-timestamp": "no_timestamp",
    "--use-node-feature-api": "use_node_feature_api",
    "--write-node-labels": "write_node_labels",
}
"""Boolean flags as urfave/cli takes them: bare (``--oneshot``) or with a value
(``--oneshot=false``, Go's ``strconv.ParseBool`` words). Click can't give a flag an optional
value, so these come from the extra arguments (``CONTEXT_SETTINGS``)."""
NEGATED = {"--no-fail-on-init-error", "--no-use-node-feature-api", "--no-write-node-labels"}
"""Ours, kept from earlier releases: ``--no-X`` is ``--X=false``."""
CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Pass to ``app.command`` so the boolean flags reach ``feature_discovery_command``."""


def bool_flags(args: list[str]) -> dict[str, bool]:
    """The boolean flags among the extra arguments, parsed; anything else is a usage error,
    a bad value a ``ConfigError`` naming the flag."""
    out: dict[str, bool] = {}
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name in NEGATED and not has_value:
            out[BOOL_FLAGS["--" + name.removeprefix("--no-")]] = False
        elif name in BOOL_FLAGS:
            out[BOOL_FLAGS[name]] = parse_bool(value, name) if has_value else True
        else:
            raise typer.BadParameter(f"no such option: {arg}")
    return out


def _settings(flags: dict[str, Any], env: dict[str, str]) -> DiscoverySettings:
    """The settings, with container paths mapped to this host's (``gpu_operator.hostpaths``)."""
    from gpu_operator.discovery.settings import load_settings

    settings = load_settings(flags, env, locate=host_str)
    return remap(settings, "output_file", "machine_type_file", "config_file")


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


def feature_discovery_command(
    ctx: typer.Context,
    mig_strategy: str | None = _opt(
        "--mig-strategy",
        env="GFD_MIG_STRATEGY, MIG_STRATEGY",
        help="How MIG devices are labelled: none, single or mixed.",
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
        help=f"NFD feature file ('-' = stdout); default {NFD_FEATURES_DIR}/gfd.",
    ),
    machine_type_file: str | None = _opt(
        "--machine-type-file",
        env="GFD_MACHINE_TYPE_FILE",
        help="File holding the machine type (default /sys/class/dmi/id/product_name).",
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
    """Label the node's GPUs as gpu-feature-discovery does (nvidia.com/gpu.*, mig*, cuda.*).

    Boolean flags, given bare or as --flag=false: --oneshot (env GFD_ONESHOT), --no-timestamp
    (GFD_NO_TIMESTAMP), --fail-on-init-error (GFD_FAIL_ON_INIT_ERROR, default true),
    --use-node-feature-api (GFD_USE_NODE_FEATURE_API, USE_NODE_FEATURE_API; default: yes,
    unless an output file is given), --write-node-labels (ours, GPU_OPERATOR_GFD_NODE_LABELS:
    also label the node directly, for clusters without NFD). --no-fail-on-init-error,
    --no-use-node-feature-api and --no-write-node-labels are spelled forms of =false.
    """
    logs.setup(logging.INFO)
    flags: dict[str, Any] = {
        k: v for k, v in locals().items() if k not in ("ctx", "device_discovery_strategy")
    }
    flags.update(bool_flags(list(ctx.args)))
    strategy = device_discovery_strategy or os.environ.get("DEVICE_DISCOVERY_STRATEGY", "auto")
    if strategy not in ("auto", "nvml"):
        raise ConfigError(
            f"--device-discovery-strategy: {strategy!r} is not supported (auto or nvml)"
        )
    from gpu_operator.discovery.loop import SignalWaiter, run

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
