"""The toolkit's settings: ``nvidia-ctk-installer``'s environment variables (with their
aliases, first set wins) as one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gpu_operator.booleans import parse_bool
from gpu_operator.errors import ConfigError
from gpu_operator.names import MANAGEMENT_CDI_KIND
from gpu_operator.toolkit.runtime_config import ShimSettings
from gpu_operator.toolkit.runtime_shim import default_binary

RUNTIMES = ("containerd", "crio", "docker")
RESTART_MODES = ("signal", "systemd", "none")
BINARY_MODES = ("auto", "nvidia", "gpu-operator", "oci")

DEFAULT_CONFIG = {
    "containerd": "/etc/containerd/config.toml",
    "crio": "/etc/crio/crio.conf",
    "docker": "/etc/docker/daemon.json",
}
DEFAULT_SOCKET = {
    "containerd": "/run/containerd/containerd.sock",
    "crio": "/var/run/crio/crio.sock",
    "docker": "/var/run/docker.sock",
}
DEFAULT_RESTART = {"containerd": "signal", "crio": "systemd", "docker": "signal"}


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _bool(env: Mapping[str, str], default: bool, *names: str) -> bool:
    """The first of ``names`` set (an empty variable is unset), read as Go reads a boolean."""
    name = next((n for n in names if env.get(n)), None)
    return default if name is None else parse_bool(env[name], name)


@dataclass(frozen=True)
class ToolkitSettings:
    runtime: str = "docker"
    """``RUNTIME``: containerd, crio or docker (upstream's default is docker)."""
    root: Path = Path("/usr/local/nvidia")
    """``ROOT``/``TOOLKIT_INSTALL_DIR``: runtime binaries live in ``<root>/toolkit``."""
    config: Path = Path(DEFAULT_CONFIG["docker"])
    """``RUNTIME_CONFIG``/``CONTAINERD_CONFIG``/``CRIO_CONFIG``/``DOCKER_CONFIG``."""
    drop_in: Path | None = None
    """``RUNTIME_DROP_IN_CONFIG``: write our settings there and import it (containerd, CRI-O)."""
    drop_in_host_path: Path | None = None
    """``RUNTIME_DROP_IN_CONFIG_HOST_PATH``: the drop-in as the runtime sees it (``imports``)."""
    socket: Path = Path(DEFAULT_SOCKET["docker"])
    """``RUNTIME_SOCKET``/``CONTAINERD_SOCKET``/``DOCKER_SOCKET``."""
    restart_mode: str = "signal"
    """``RUNTIME_RESTART_MODE``: signal, systemd or none."""
    runtime_name: str = "nvidia"
    """``NVIDIA_RUNTIME_NAME``/``CONTAINERD_RUNTIME_CLASS``/``DOCKER_RUNTIME_NAME``."""
    set_as_default: bool = True
    """``NVIDIA_RUNTIME_SET_AS_DEFAULT``/``CONTAINERD_SET_AS_DEFAULT``/``DOCKER_SET_AS_DEFAULT``."""
    cdi_enabled: bool = False
    """``CDI_ENABLED``/``ENABLE_CDI``/``RUNTIME_ENABLE_CDI``."""
    runtime_type: str = "io.containerd.runc.v2"
    """``CONTAINERD_RUNTIME_TYPE``."""
    binary_mode: str = "auto"
    """``GPU_OPERATOR_RUNTIME_BINARY`` (ours): nvidia (NVIDIA's ``nvidia-container-runtime``,
    already in ``<root>/toolkit``), gpu-operator (our shim, installed there), oci (the plain OCI
    runtime; GPUs come through CDI only) or auto (NVIDIA's where installed, else ours where
    this image has it, else oci)."""
    shim_binary: Path = field(default_factory=default_binary)
    """``GPU_OPERATOR_RUNTIME_SHIM`` (ours): the built runtime shim this image ships."""
    runtime_shim: ShimSettings = field(default_factory=ShimSettings)
    """The shim's ``config.toml`` (``NVIDIA_CONTAINER_RUNTIME_*``, ``ACCEPT_NVIDIA_*``)."""
    host_root: Path = Path("/host")
    """``HOST_ROOT_MOUNT``: the host's root in this container (systemd restarts chroot there)."""
    systemd_unit: str | None = None
    """``RUNTIME_SYSTEMD_UNIT``: the unit to restart; default the runtime's name."""
    cdi_output_dir: Path = Path("/var/run/cdi")
    """``CDI_OUTPUT_DIR``."""
    cdi_kind: str = MANAGEMENT_CDI_KIND
    """``CDI_KIND``."""
    driver_root: Path = Path("/run/nvidia/driver")
    """``NVIDIA_DRIVER_ROOT``/``DRIVER_ROOT``."""
    driver_root_ctr_path: Path | None = None
    """``DRIVER_ROOT_CTR_PATH``: the driver root inside this container (default the same)."""
    dev_root: Path | None = None
    """``NVIDIA_DEV_ROOT``: where ``/dev`` lives (default the driver root)."""
    state_dir: Path | None = None
    """``GPU_OPERATOR_TOOLKIT_STATE_DIR`` (ours): backups of the files we change; default
    ``<root>/toolkit-backup`` (``<root>/toolkit`` is replaced on every install)."""
    pid_file: Path = Path("/run/nvidia/toolkit/toolkit.pid")
    """``TOOLKIT_PID_FILE``/``PID_FILE``."""
    no_daemon: bool = True
    """``NO_DAEMON``: return after configuring (false: stay up, undo on SIGTERM)."""
    no_runtime_config: bool = False
    """``NO_RUNTIME_CONFIG``: install nothing into the runtime's config."""
    runtime_version: str | None = None
    """``GPU_OPERATOR_RUNTIME_VERSION`` (ours): skip version detection (e.g. ``1.7.22``)."""

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"RUNTIME={self.runtime!r}: expected one of {', '.join(RUNTIMES)}")
        if self.restart_mode not in RESTART_MODES:
            raise ConfigError(
                f"RUNTIME_RESTART_MODE={self.restart_mode!r}: expected one of "
                f"{', '.join(RESTART_MODES)}"
            )
        if self.binary_mode not in BINARY_MODES:
            raise ConfigError(
                f"GPU_OPERATOR_RUNTIME_BINARY={self.binary_mode!r}: expected one of "
                f"{', '.join(BINARY_MODES)}"
            )

    @property
    def toolkit_dir(self) -> Path:
        return self.root / "toolkit"

    @property
    def backup_dir(self) -> Path:
        return self.state_dir or self.root / "toolkit-backup"

    @property
    def unit(self) -> str:
        return self.systemd_unit or self.runtime

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ToolkitSettings:
        env = os.environ if env is None else env
        runtime = env.get("RUNTIME") or "docker"
        if runtime not in RUNTIMES:
            raise ConfigError(f"RUNTIME={runtime!r}: expected one of {', '.join(RUNTIMES)}")
        own = {"containerd": "CONTAINERD", "crio": "CRIO", "docker": "DOCKER"}[runtime]
        config = _first(env, "RUNTIME_CONFIG", f"{own}_CONFIG") or DEFAULT_CONFIG[runtime]
        socket = _first(env, "RUNTIME_SOCKET", f"{own}_SOCKET") or DEFAULT_SOCKET[runtime]
        drop_in = env.get("RUNTIME_DROP_IN_CONFIG") or None
        drop_in_host = env.get("RUNTIME_DROP_IN_CONFIG_HOST_PATH") or drop_in
        name_vars = ["NVIDIA_RUNTIME_NAME"]
        default_vars = ["NVIDIA_RUNTIME_SET_AS_DEFAULT"]
        if runtime == "containerd":
            name_vars.append("CONTAINERD_RUNTIME_CLASS")
            default_vars.append("CONTAINERD_SET_AS_DEFAULT")
        if runtime == "docker":
            name_vars.append("DOCKER_RUNTIME_NAME")
            default_vars.append("DOCKER_SET_AS_DEFAULT")
        root = _first(env, "ROOT", "TOOLKIT_INSTALL_DIR") or "/usr/local/nvidia"
        state = env.get("GPU_OPERATOR_TOOLKIT_STATE_DIR")
        ctr_path = env.get("DRIVER_ROOT_CTR_PATH")
        dev_root = env.get("NVIDIA_DEV_ROOT")
        return cls(
            runtime=runtime,
            root=Path(root),
            config=Path(config),
            drop_in=Path(drop_in) if drop_in else None,
            drop_in_host_path=Path(drop_in_host) if drop_in_host else None,
            socket=Path(socket),
            restart_mode=env.get("RUNTIME_RESTART_MODE") or DEFAULT_RESTART[runtime],
            runtime_name=_first(env, *name_vars) or "nvidia",
            set_as_default=_bool(env, True, *default_vars),
            cdi_enabled=_bool(env, False, "CDI_ENABLED", "ENABLE_CDI", "RUNTIME_ENABLE_CDI"),
            runtime_type=env.get("CONTAINERD_RUNTIME_TYPE") or "io.containerd.runc.v2",
            binary_mode=env.get("GPU_OPERATOR_RUNTIME_BINARY") or "auto",
            host_root=Path(env.get("HOST_ROOT_MOUNT") or "/host"),
            systemd_unit=env.get("RUNTIME_SYSTEMD_UNIT") or None,
            cdi_output_dir=Path(env.get("CDI_OUTPUT_DIR") or "/var/run/cdi"),
            cdi_kind=env.get("CDI_KIND") or MANAGEMENT_CDI_KIND,
            driver_root=Path(
                _first(env, "NVIDIA_DRIVER_ROOT", "DRIVER_ROOT") or "/run/nvidia/driver"
            ),
            driver_root_ctr_path=Path(ctr_path) if ctr_path else None,
            dev_root=Path(dev_root) if dev_root else None,
            state_dir=Path(state) if state else None,
            pid_file=Path(
                _first(env, "TOOLKIT_PID_FILE", "PID_FILE") or "/run/nvidia/toolkit/toolkit.pid"
            ),
            no_daemon=_bool(env, True, "NO_DAEMON"),
            no_runtime_config=_bool(env, False, "NO_RUNTIME_CONFIG"),
            runtime_version=env.get("GPU_OPERATOR_RUNTIME_VERSION") or None,
            shim_binary=Path(env.get("GPU_OPERATOR_RUNTIME_SHIM") or default_binary()),
            runtime_shim=ShimSettings.from_env(env),
        )
