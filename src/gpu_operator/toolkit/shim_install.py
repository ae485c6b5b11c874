"""Putting our runtime shim on the node: ``<ROOT>/toolkit/nvidia-container-runtime{,.cdi,.legacy}``
(copies of the image's binary), its ``config.toml`` (``<ROOT>/toolkit/.config/
nvidia-container-runtime/``, where the shim looks beside itself, as upstream's wrappers point
theirs) and the JSON CDI specs it applies (``<ROOT>/toolkit/cdi/``: ``nvidia.com/gpu`` from
NVML, hook-free since the host has no ``nvidia-cdi-hook`` of ours; ``management.nvidia.com/gpu``).

Each file is written only when its bytes change (atomically). Uninstall leaves them: running
containers' shims (containerd-shim-runc-v2) still exec the binary to kill and delete them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError, GpuError
from gpu_operator.names import CDI_KIND
from gpu_operator.toolkit import runtime_config
from gpu_operator.toolkit.cdi_generate import (
    CdiOptions,
    generate,
    management_spec,
    parse_mig_minors,
    spec_file_name,
)
from gpu_operator.toolkit.driver_tree import DriverTree, device_nodes, discover, driver_version
from gpu_operator.toolkit.host_files import write_atomically
from gpu_operator.toolkit.runtime_shim import NAMES
from gpu_operator.toolkit.settings import ToolkitSettings

Log = Callable[[str], None]
MIG_MINORS = Path("/proc/driver/nvidia-caps/mig-minors")


def config_path(settings: ToolkitSettings) -> Path:
    return settings.toolkit_dir / ".config" / "nvidia-container-runtime" / "config.toml"


def spec_dir(settings: ToolkitSettings) -> Path:
    return settings.toolkit_dir / "cdi"


def config_text(settings: ToolkitSettings) -> str:
    own = dataclasses.replace(settings.runtime_shim, extra_spec_dirs=(str(spec_dir(settings)),))
    return runtime_config.render(own)


def _tree(settings: ToolkitSettings, version: str) -> DriverTree:
    root = settings.driver_root_ctr_path or settings.driver_root
    return discover(root, version, host_root=settings.driver_root)


def _options(settings: ToolkitSettings) -> CdiOptions:
    dev_root = settings.dev_root or Path("/")
    return CdiOptions(
        hooks=False,
        dev_root=str(dev_root),
        modeset=(dev_root / "dev/nvidia-modeset").exists(),
    )


def gpu_spec(settings: ToolkitSettings, log: Log) -> dict[str, Any] | None:
    """The node's ``nvidia.com/gpu`` spec from NVML (real or simulated), or None without one."""
    from gpu_operator.gpu import HardwareSettings, Nvml

    try:
        with Nvml.open(HardwareSettings.from_env()) as nvml:
            version = nvml.system().driver_version
            gpus = nvml.gpus()
            migs = {
                g.index: nvml.mig_devices(g.index)
                for g in gpus
                if g.mig_mode and g.mig_mode.enabled
            }
    except GpuError as error:
        log(f"no {CDI_KIND} CDI spec for the runtime: {error}")
        return None
    minors = parse_mig_minors(MIG_MINORS.read_text()) if MIG_MINORS.exists() else None
    return generate(gpus, migs, _tree(settings, version), _options(settings), mig_minors=minors)


def management_spec_json(settings: ToolkitSettings) -> dict[str, Any] | None:
    root = settings.driver_root_ctr_path or settings.driver_root
    version = driver_version(root)
    if version is None:
        return None
    dev_root = settings.dev_root or Path("/")
    return management_spec(_tree(settings, version), device_nodes(dev_root), _options(settings))


def planned_files(
    settings: ToolkitSettings, log: Log = lambda line: None
) -> dict[Path, tuple[bytes, int]]:
    """Every file the shim needs on the node: path → (bytes, mode)."""
    binary = settings.shim_binary
    try:
        program = binary.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"GPU_OPERATOR_RUNTIME_SHIM={binary}: cannot read the runtime shim: {error.strerror}"
        ) from error
    files = {settings.toolkit_dir / name: (program, 0o755) for name in NAMES}
    files[config_path(settings)] = (config_text(settings).encode(), 0o644)
    for spec in (gpu_spec(settings, log), management_spec_json(settings)):
        if spec is not None:
            path = spec_dir(settings) / spec_file_name(spec["kind"], "json")
            files[path] = ((json.dumps(spec, indent=2) + "\n").encode(), 0o644)
    return files


def _differs(path: Path, data: bytes, mode: int) -> bool:
    try:
        return path.read_bytes() != data or (path.stat().st_mode & 0o7777) != mode
    except FileNotFoundError:
        return True


def install(
    settings: ToolkitSettings, log: Log = lambda line: None, *, dry_run: bool = False
) -> list[Path]:
    """Write the shim's files that differ (none with ``dry_run``); the paths that differ."""
    files = planned_files(settings, log)
    changed = [path for path, (data, mode) in files.items() if _differs(path, data, mode)]
    if not dry_run:
        for path in changed:
            data, mode = files[path]
            write_atomically(path, data, mode=mode)
            log(f"wrote {path}")
    return changed
