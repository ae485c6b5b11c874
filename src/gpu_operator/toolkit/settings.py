"""The toolkit's settings: ``nvidia-ctk-installer``'s environment variables (with their
aliases, first set wins) as one frozen object, read through ``gpu_operator.settings_engine``
(one table, ``variables(runtime)``), as the driver and MIG managers read theirs: a boolean with
Go's words, a bad value refused in one line naming the variable and what it accepts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.names import MANAGEMENT_CDI_KIND
from gpu_operator.settings_engine import Field, from_env, one_of, variable
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

RUNTIME = variable("RUNTIME", parse=one_of(*RUNTIMES))
"""Read first: the other variables' aliases and defaults depend on it."""
OWN_PREFIX = {"containerd": "CONTAINERD", "crio": "CRIO", "docker": "DOCKER"}
NAME_ALIASES = {
    "containerd": ("CONTAINERD_RUNTIME_CLASS",),
    "crio": (),
    "docker": ("DOCKER_RUNTIME_NAME",),
}
DEFAULT_ALIASES = {
    "containerd": ("CONTAINERD_SET_AS_DEFAULT",),
    "crio": (),
    "docker": ("DOCKER_SET_AS_DEFAULT",),
}


def variables(runtime: str) -> dict[str, Field[Any]]:
    """Field → its variables (first set wins) and reader (``gpu_operator.settings_engine``); an
    empty variable is unset. The runtime's own names join the aliases only for that runtime
    (``CONTAINERD_CONFIG`` is read when ``RUNTIME=containerd``, as upstream's installer does)."""
    own = OWN_PREFIX[runtime]
    return {
        "runtime": RUNTIME,
        "root": variable("ROOT", "TOOLKIT_INSTALL_DIR", parse=Path),
        "config": variable("RUNTIME_CONFIG", f"{own}_CONFIG", parse=Path),
        "drop_in": variable("RUNTIME_DROP_IN_CONFIG", parse=Path),
        "drop_in_host_path": variable("RUNTIME_DROP_IN_CONFIG_HOST_PATH", parse=Path),
        "socket": variable("RUNTIME_SOCKET", f"{own}_SOCKET", parse=Path),
        "restart_mode": variable("RUNTIME_RESTART_MODE", parse=one_of(*RESTART_MODES)),
        "runtime_name": variable("NVIDIA_RUNTIME_NAME", *NAME_ALIASES[runtime]),
        "set_as_default": variable(
            "NVIDIA_RUNTIME_SET_AS_DEFAULT", *DEFAULT_ALIASES[runtime], parse=bool
        ),
        "cdi_enabled": variable("CDI_ENABLED", "ENABLE_CDI", "RUNTIME_ENABLE_CDI", parse=bool),
        "runtime_type": variable("CONTAINERD_RUNTIME_TYPE"),
        "binary_mode": variable("GPU_OPERATOR_RUNTIME_BINARY", parse=one_of(*BINARY_MODES)),
        "host_root": variable("HOST_ROOT_MOUNT", parse=Path),
        "systemd_unit": variable("RUNTIME_SYSTEMD_UNIT"),
        "cdi_output_dir": variable("CDI_OUTPUT_DIR", parse=Path),
        "cdi_kind": variable("CDI_KIND"),
        "driver_root": variable("NVIDIA_DRIVER_ROOT", "DRIVER_ROOT", parse=Path),
        "driver_root_ctr_path": variable("DRIVER_ROOT_CTR_PATH", parse=Path),
        "dev_root": variable("NVIDIA_DEV_ROOT", parse=Path),
        "state_dir": variable("GPU_OPERATOR_TOOLKIT_STATE_DIR", parse=Path),
        "pid_file": variable("TOOLKIT_PID_FILE", "PID_FILE", parse=Path),
        "no_daemon": variable("NO_DAEMON", parse=bool),
        "no_runtime_config": variable("NO_RUNTIME_CONFIG", parse=bool),
        "runtime_version": variable("GPU_OPERATOR_RUNTIME_VERSION"),
        "shim_binary": variable("GPU_OPERATOR_RUNTIME_SHIM", parse=Path),
    }


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
        """The installer's settings from ``env`` (default ``os.environ``): ``RUNTIME`` first,
        then ``variables(runtime)``; the runtime's own defaults where a variable is unset;
        the shim's ``config.toml`` from ``ShimSettings.from_env``."""
        env = os.environ if env is None else env
        runtime = from_env({"runtime": RUNTIME}, env).get("runtime", cls.runtime)
        values = {
            "config": Path(DEFAULT_CONFIG[runtime]),
            "socket": Path(DEFAULT_SOCKET[runtime]),
            "restart_mode": DEFAULT_RESTART[runtime],
            **from_env(variables(runtime), env),
        }
        values.setdefault("drop_in_host_path", values.get("drop_in"))
        return cls(**values, runtime_shim=ShimSettings.from_env(env))
