"""``gpu-operator feature-discovery``: gpu-feature-discovery's command line (flags and
environment variables as upstream) as a typer command, for ``--help`` and for callers that
drive the typer app. A node's GFD process runs ``discovery.process`` without typer
(``gpu_operator.cli``'s runner); both label through ``process.serve``.
"""

from __future__ import annotations

import logging
from typing import Any

import typer

from gpu_operator import logs
from gpu_operator.commands.options import env_option as _opt
from gpu_operator.deviceplugin.argv import UsageError
from gpu_operator.discovery.process import BOOL_FLAGS, NEGATED, make_writers, read_flag, serve
from gpu_operator.names import NFD_FEATURES_DIR

__all__ = ["CONTEXT_SETTINGS", "bool_flags", "feature_discovery_command", "make_writers"]


CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Pass to ``app.command`` so the boolean flags reach ``feature_discovery_command``."""


def bool_flags(args: list[str]) -> dict[str, bool]:
    """The boolean flags among the extra arguments, parsed; anything else is a usage error,
    a bad value a ``ConfigError`` naming the flag."""
    out: dict[str, bool] = {}
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name not in BOOL_FLAGS and name not in NEGATED:
            raise typer.BadParameter(f"no such option: {arg}")
        try:
            field, parsed = read_flag(name, value if has_value else None)
        except UsageError as error:
            raise typer.BadParameter(str(error)) from None
        out[field] = parsed
    return out


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
    flags: dict[str, Any] = {k: v for k, v in locals().items() if k != "ctx"}
    flags["sleep_interval_s"] = flags.pop("sleep_interval")  # the settings field's name
    flags.update(bool_flags(list(ctx.args)))
    logs.setup(logging.INFO)
    serve(flags, ctx.obj)
