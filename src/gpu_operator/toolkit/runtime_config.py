"""The runtime shim's ``config.toml``, in upstream's shape (``nvidia-container-runtime``
section: ``mode``, ``runtimes``, ``log-level``, ``debug``; ``modes.cdi``: ``default-kind``,
``annotation-prefixes``, ``spec-dirs``; the top-level ``accept-nvidia-visible-devices-*``
keys), with the installer's environment variables as upstream's ``nvidia-ctk-installer``
names them. Pure: settings in, text out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpu_operator.booleans import env_bool
from gpu_operator.errors import ConfigError
from gpu_operator.names import CDI_KIND

MODES = ("auto", "cdi", "legacy", "jit-cdi")
"""Upstream's modes the shim implements (``csv`` is Tegra's, not ours)."""
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_RUNTIMES = ("docker-runc", "runc", "crun")
DEFAULT_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")


def _list(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class ShimSettings:
    mode: str = "auto"
    """``NVIDIA_CONTAINER_RUNTIME_MODE``: auto, cdi or legacy (jit-cdi accepted, = auto)."""
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    """``NVIDIA_CONTAINER_RUNTIME_RUNTIMES``: the low-level runtimes, first found is used."""
    log_level: str = "info"
    """``NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL``."""
    debug: str | None = None
    """``NVIDIA_CONTAINER_RUNTIME_DEBUG``: the shim's log file (none: ``/dev/null``)."""
    default_kind: str = CDI_KIND
    """``NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND``: the kind of bare device names in
    cdi mode (the operator sets ``management.nvidia.com/gpu``)."""
    annotation_prefixes: tuple[str, ...] = ("cdi.k8s.io/",)
    """``NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES``."""
    accept_envvar_unprivileged: bool = True
    """``ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED``."""
    accept_volume_mounts: bool = False
    """``ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS``."""
    extra_spec_dirs: tuple[str, ...] = field(default=())
    """Directories searched before the CDI ones (the toolkit's own JSON specs)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(
                f"NVIDIA_CONTAINER_RUNTIME_MODE={self.mode!r}: expected one of {', '.join(MODES)}"
            )
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(
                f"NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL={self.log_level!r}: expected one of "
                f"{', '.join(LOG_LEVELS)}"
            )
        if not self.runtimes:
            raise ConfigError("NVIDIA_CONTAINER_RUNTIME_RUNTIMES: names no runtime")
        kind = self.default_kind
        if "/" not in kind or kind.startswith("/") or kind.endswith("/"):
            raise ConfigError(
                f"NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND={kind!r}: expected vendor/class"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ShimSettings:
        return cls(
            mode=env.get("NVIDIA_CONTAINER_RUNTIME_MODE") or "auto",
            runtimes=_list(env.get("NVIDIA_CONTAINER_RUNTIME_RUNTIMES")) or DEFAULT_RUNTIMES,
            log_level=env.get("NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL") or "info",
            debug=env.get("NVIDIA_CONTAINER_RUNTIME_DEBUG") or None,
            default_kind=env.get("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND") or CDI_KIND,
            annotation_prefixes=_list(
                env.get("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES")
            )
            or ("cdi.k8s.io/",),
            accept_envvar_unprivileged=env_bool(
                env, "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", True
            ),
            accept_volume_mounts=env_bool(
                env, "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", False
            ),
        )


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def render(settings: ShimSettings) -> str:
    """The ``config.toml`` the shim reads (upstream's layout; commented lines are defaults)."""
    bool_text = {True: "true", False: "false"}
    spec_dirs = (*settings.extra_spec_dirs, *DEFAULT_SPEC_DIRS)
    debug = (
        f"debug = {json.dumps(settings.debug)}"
        if settings.debug
        else '#debug = "/var/log/nvidia-container-runtime.log"'
    )
    return "\n".join(
        [
            "# Written by gpu-operator toolkit install for its nvidia-container-runtime.",
            "accept-nvidia-visible-devices-as-volume-mounts = "
            + bool_text[settings.accept_volume_mounts],
            "accept-nvidia-visible-devices-envvar-when-unprivileged = "
            + bool_text[settings.accept_envvar_unprivileged],
            "",
            "[nvidia-container-runtime]",
            debug,
            f"log-level = {json.dumps(settings.log_level)}",
            f"mode = {json.dumps(settings.mode)}",
            f"runtimes = {_toml_list(settings.runtimes)}",
            "",
            "[nvidia-container-runtime.modes.cdi]",
            f"annotation-prefixes = {_toml_list(settings.annotation_prefixes)}",
            f"default-kind = {json.dumps(settings.default_kind)}",
            "# later directories win, as in CDI",
            f"spec-dirs = {_toml_list(spec_dirs)}",
            "",
        ]
    )
