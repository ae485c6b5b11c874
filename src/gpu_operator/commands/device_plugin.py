"""``gpu-operator device-plugin``: the NVIDIA device plugin's command line (flags and
environment variables as ``nvidia-device-plugin``) as a typer command, for ``--help`` and for
callers that drive the typer app. A node's plugin process runs ``deviceplugin.process``
without typer (``gpu_operator.cli``'s runner); both serve through ``process.serve``.
"""

from __future__ import annotations

import logging
from typing import Any

import typer

from gpu_operator import logs
from gpu_operator.commands.options import env_option as _opt
from gpu_operator.deviceplugin.process import BOOL_FLAGS, load_settings, serve

__all__ = ["BOOL_FLAGS", "CONTEXT_SETTINGS", "bool_flags", "device_plugin_command", "load_settings"]

CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Pass to ``app.command`` so the boolean flags reach ``device_plugin_command``."""


def bool_flags(args: list[str]) -> dict[str, str]:
    """The boolean flags among the extra arguments; anything else is a usage error."""
    out = {}
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name not in BOOL_FLAGS:
            raise typer.BadParameter(f"no such option: {arg}")
        out[BOOL_FLAGS[name][0]] = value if has_value else "true"
    return out


def device_plugin_command(
    ctx: typer.Context,
    mig_strategy: str | None = _opt(
        "--mig-strategy", env="MIG_STRATEGY", help="MIG strategy: none, single or mixed."
    ),
    driver_root: str | None = _opt(
        "--driver-root",
        "--nvidia-driver-root",
        env="NVIDIA_DRIVER_ROOT",
        help="Root of the NVIDIA driver installation.",
    ),
    dev_root: str | None = _opt(
        "--dev-root",
        "--nvidia-dev-root",
        env="NVIDIA_DEV_ROOT",
        help="Root under which /dev/nvidia* are found (default: the driver root).",
    ),
    device_list_strategy: str | None = _opt(
        "--device-list-strategy",
        env="DEVICE_LIST_STRATEGY",
        help="envvar, volume-mounts, cdi-annotations, cdi-cri (comma list).",
    ),
    device_id_strategy: str | None = _opt(
        "--device-id-strategy", env="DEVICE_ID_STRATEGY", help="uuid or index."
    ),
    cdi_annotation_prefix: str | None = _opt(
        "--cdi-annotation-prefix", env="CDI_ANNOTATION_PREFIX", help="CDI annotation prefix."
    ),
    nvidia_cdi_hook_path: str | None = _opt(
        "--nvidia-cdi-hook-path",
        "--nvidia-ctk-path",
        env="NVIDIA_CDI_HOOK_PATH",
        help="Path of nvidia-cdi-hook / nvidia-ctk.",
    ),
    driver_root_ctr_path: str | None = _opt(
        "--driver-root-ctr-path",
        "--container-driver-root",
        env="DRIVER_ROOT_CTR_PATH",
        help="Where the driver root is mounted in this container.",
    ),
    mps_root: str | None = _opt("--mps-root", env="MPS_ROOT", help="MPS root (for MPS sharing)."),
    shared_devices_allocation_policy: str | None = _opt(
        "--shared-devices-allocation-policy",
        env="SHARED_DEVICES_ALLOCATION_POLICY",
        help="distributed or packed.",
    ),
    device_discovery_strategy: str | None = _opt(
        "--device-discovery-strategy", env="DEVICE_DISCOVERY_STRATEGY", help="auto, nvml, tegra."
    ),
    imex_channel_ids: str | None = _opt(
        "--imex-channel-ids", env="IMEX_CHANNEL_IDS", help="IMEX channel ids (comma list)."
    ),
    kubelet_socket: str | None = _opt(
        "--kubelet-socket",
        env="KUBELET_SOCKET",
        help="The kubelet's registration socket ('' = serve, don't register).",
    ),
    config_file: str | None = _opt("--config-file", env="CONFIG_FILE", help="Config file (v1)."),
    cdi_feature_flags: str | None = _opt(
        "--cdi-feature-flags", env="CDI_FEATURE_FLAGS", help="CDI feature flags."
    ),
    cdi_disable_hooks: str | None = _opt(
        "--cdi-disable-hooks", env="CDI_DISABLE_HOOKS", help="CDI hooks to disable."
    ),
) -> None:
    """Run the NVIDIA device plugin: advertise GPUs and MIG devices to the kubelet.

    Boolean flags, given bare or as --flag=false: --fail-on-init-error (env FAIL_ON_INIT_ERROR,
    default true), --pass-device-specs (PASS_DEVICE_SPECS), --gdrcopy-enabled (GDRCOPY_ENABLED),
    --gds-enabled (GDS_ENABLED), --mofed-enabled (MOFED_ENABLED), --imex-required
    (IMEX_REQUIRED). Health: DP_DISABLE_HEALTHCHECKS, DP_ENABLE_HEALTHCHECKS, and
    DP_HEALTH_RECOVERY (ours: a quiet period such as 60s after which a device that passes an
    NVML check is Healthy again).
    """
    flags: dict[str, Any] = {k: v for k, v in locals().items() if k != "ctx"}
    flags.update(bool_flags(list(ctx.args)))
    logs.setup(logging.INFO)
    serve(flags, ctx.obj)
