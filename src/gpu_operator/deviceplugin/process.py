"""The device plugin as a process: ``nvidia-device-plugin``'s command line in, the plugin served
until SIGTERM. ``gpu-operator device-plugin`` and ``nvidia-device-plugin`` come here straight
from ``gpu_operator.cli`` without a CLI framework (``argv``); ``--help`` is typer's
(``gpu_operator.commands.device_plugin``, which declares the same options).

Precedence is upstream's: flag > environment variable > config file (``--config-file`` /
``CONFIG_FILE``). SIGTERM, SIGINT and SIGQUIT stop it (sockets removed); SIGHUP re-reads the
config and restarts the plugins. With ``FAIL_ON_INIT_ERROR=false`` a node without GPUs or
driver logs the reason and waits instead of exiting (so a DaemonSet pod doesn't crash-loop).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from gpu_operator import logs
from gpu_operator.deviceplugin.argv import UsageError, parse, usage_error
from gpu_operator.errors import GpuError
from gpu_operator.hostpaths import host_path, remap
from gpu_operator.signal_wait import wait_for_signal

if TYPE_CHECKING:  # imported where used: a usage error loads neither gRPC nor NVML
    from gpu_operator.deviceplugin.settings import PluginSettings
    from gpu_operator.gpu import HardwareSettings

log = logging.getLogger("gpu_operator.deviceplugin")

OPTIONS = {
    "--mig-strategy": "mig_strategy",
    "--driver-root": "driver_root",
    "--nvidia-driver-root": "driver_root",
    "--dev-root": "dev_root",
    "--nvidia-dev-root": "dev_root",
    "--device-list-strategy": "device_list_strategy",
    "--device-id-strategy": "device_id_strategy",
    "--cdi-annotation-prefix": "cdi_annotation_prefix",
    "--nvidia-cdi-hook-path": "nvidia_cdi_hook_path",
    "--nvidia-ctk-path": "nvidia_cdi_hook_path",
    "--driver-root-ctr-path": "driver_root_ctr_path",
    "--container-driver-root": "driver_root_ctr_path",
    "--mps-root": "mps_root",
    "--shared-devices-allocation-policy": "shared_devices_allocation_policy",
    "--device-discovery-strategy": "device_discovery_strategy",
    "--imex-channel-ids": "imex_channel_ids",
    "--kubelet-socket": "kubelet_socket",
    "--config-file": "config_file",
    "--cdi-feature-flags": "cdi_feature_flags",
    "--cdi-disable-hooks": "cdi_disable_hooks",
}
"""Value options → settings field (the typer command declares the same; a test holds them
equal)."""
BOOL_FLAGS = {
    "--fail-on-init-error": ("fail_on_init_error", "FAIL_ON_INIT_ERROR"),
    "--pass-device-specs": ("pass_device_specs", "PASS_DEVICE_SPECS"),
    "--gdrcopy-enabled": ("gdrcopy_enabled", "GDRCOPY_ENABLED"),
    "--gds-enabled": ("gds_enabled", "GDS_ENABLED"),
    "--mofed-enabled": ("mofed_enabled", "MOFED_ENABLED"),
    "--imex-required": ("imex_required", "IMEX_REQUIRED"),
}
"""Boolean flags as urfave/cli takes them: ``--pass-device-specs`` or ``--pass-device-specs=false``;
the value is read by the settings (``ConfigError`` naming the flag)."""


def parse_args(args: list[str]) -> dict[str, Any]:
    """The flags ``args`` give (every field present, ``None`` = not given); ``UsageError``."""
    readers = {
        name: (lambda value, field=field: (field, "true" if value is None else value))
        for name, (field, _) in BOOL_FLAGS.items()
    }
    flags: dict[str, Any] = dict.fromkeys(OPTIONS.values())
    flags.update(parse(args, OPTIONS, readers))
    return flags


def load_settings(flags: dict[str, Any], env: dict[str, str]) -> PluginSettings:
    from gpu_operator.deviceplugin.settings import read_config, resolve_settings

    config_file = flags.get("config_file") or env.get("CONFIG_FILE")
    config = read_config(str(host_path(config_file)) if config_file else None)
    settings = resolve_settings(flags, env, config, config_source=config_file or "config file")
    return remap(settings, "kubelet_socket", "driver_root_ctr_path", "mps_root")


def serve(flags: dict[str, Any], hardware: HardwareSettings) -> None:
    """Serve until a stop signal; reload on SIGHUP."""
    from gpu_operator.deviceplugin.heap import release_free_memory
    from gpu_operator.deviceplugin.plugin import DevicePlugin

    stop, reload = threading.Event(), threading.Event()

    def on_stop(signum: int, _: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    def on_hup(signum: int, _: Any) -> None:
        log.info("received SIGHUP, restarting")
        reload.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, on_stop)
    signal.signal(signal.SIGHUP, on_hup)

    settings = load_settings(flags, dict(os.environ))
    plugin = DevicePlugin(settings, hardware)
    try:
        plugin.start()
        release_free_memory()  # what reading the node and starting gRPC left in the heap
    except GpuError as error:
        if settings.fail_on_init_error:
            raise
        log.error("%s", error)
        log.error(
            "FAIL_ON_INIT_ERROR=false: no devices will be advertised; waiting indefinitely "
            "(if this is a GPU node, check the driver and the container toolkit)"
        )
        wait_for_signal(stop)
        return
    try:
        while not stop.is_set():
            if reload.wait(0.2):
                reload.clear()
                plugin.stop()
                plugin = DevicePlugin(load_settings(flags, dict(os.environ)), hardware)
                plugin.start()
                release_free_memory()
    finally:
        plugin.stop()


def run(args: list[str], hardware: HardwareSettings) -> None:
    """``gpu-operator device-plugin ARGS`` without typer (``gpu_operator.cli``'s runner)."""
    try:
        flags = parse_args(args)
    except UsageError as error:
        usage_error("device-plugin", error)
    logs.setup(logging.INFO)
    serve(flags, hardware)
