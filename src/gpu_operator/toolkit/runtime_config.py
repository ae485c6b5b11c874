"""The runtime shim's ``config.toml``, in upstream's shape (``nvidia-container-runtime``
section: ``mode``, ``runtimes``, ``log-level``, ``debug``; ``modes.cdi``: ``default-kind``,
``annotation-prefixes``, ``spec-dirs``; the top-level ``accept-nvidia-visible-devices-*``
keys), with the installer's environment variables as upstream's ``nvidia-ctk-installer``
names them, read through ``gpu_operator.settings_engine`` (one table, ``VARIABLES``). Pure:
settings in, text out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.names import CDI_KIND
from gpu_operator.settings_engine import Field, from_env, one_of, variable

MODES = ("auto", "cdi", "legacy", "jit-cdi")
"""Upstream's modes the shim implements (``csv`` is Tegra's, not ours)."""
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_RUNTIMES = ("docker-runc", "runc", "crun")
DEFAULT_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")


def _list(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
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
        """The shim's settings from the installer's variables (``VARIABLES``); a list of only
        commas counts as unset, as an empty variable does."""
        values = from_env(VARIABLES, env)
        return cls(**{name: value for name, value in values.items() if value != ()})


VARIABLES: dict[str, Field[Any]] = {
    "mode": variable("NVIDIA_CONTAINER_RUNTIME_MODE", parse=one_of(*MODES)),
    "runtimes": variable("NVIDIA_CONTAINER_RUNTIME_RUNTIMES", parse=_list),
    "log_level": variable("NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL", parse=one_of(*LOG_LEVELS)),
    "debug": variable("NVIDIA_CONTAINER_RUNTIME_DEBUG"),
    "default_kind": variable("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND"),
    "annotation_prefixes": variable(
        "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES", parse=_list
    ),
    "accept_envvar_unprivileged": variable(
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", parse=bool
    ),
    "accept_volume_mounts": variable("ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", parse=bool),
}
"""Field → its variable and reader (``gpu_operator.settings_engine``); an empty one is unset."""


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
