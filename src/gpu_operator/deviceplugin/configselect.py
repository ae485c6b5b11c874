"""Upstream's ``config-manager``, the part without Kubernetes: which named config of the
plugin's ConfigMap a node gets (its ``nvidia.com/device-plugin.config`` label, else
``DEFAULT_CONFIG``, else the fallback strategies), and installing it at ``CONFIG_FILE_DST``.

Fallback strategies, tried in order when neither the label nor a default names a config:
``named`` takes a config called ``default``; ``single`` takes the only config there is;
``empty`` installs an empty file (the plugin's flags and env then decide alone).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.errors import ConfigError

FALLBACK_STRATEGIES = ("named", "single", "empty")
EMPTY = ""  # the selection meaning "install an empty config"


@dataclass(frozen=True)
class Selection:
    name: str  # the config's key in the ConfigMap; EMPTY for the empty fallback
    why: str  # "node label", "DEFAULT_CONFIG", "fallback named", …


def parse_fallbacks(raw: str) -> tuple[str, ...]:
    """``named,single`` → ("named", "single"); an unknown strategy is a ConfigError."""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [name for name in names if name not in FALLBACK_STRATEGIES]
    if unknown:
        raise ConfigError(
            f"FALLBACK_STRATEGIES: unknown strategy {', '.join(unknown)!s} "
            f"(known: {', '.join(FALLBACK_STRATEGIES)})"
        )
    return names


def available(srcdir: Path) -> list[str]:
    """The config names in a mounted ConfigMap directory (its ``..data`` links skipped)."""
    if not srcdir.is_dir():
        raise ConfigError(f"CONFIG_FILE_SRCDIR {srcdir}: no such directory")
    return sorted(p.name for p in srcdir.iterdir() if not p.name.startswith(".") and p.is_file())


def select(
    label: str, default: str, fallbacks: Sequence[str], names: Sequence[str], *, where: str
) -> Selection:
    """The config a node gets. ``where`` names the label's source for the error message."""
    if label:
        if label not in names:
            raise ConfigError(
                f"{where} asks for config {label!r}, which the ConfigMap does not have "
                f"(it has: {', '.join(names) or 'nothing'})"
            )
        return Selection(label, "node label")
    if default:
        if default not in names:
            raise ConfigError(
                f"DEFAULT_CONFIG {default!r} is not in the ConfigMap "
                f"(it has: {', '.join(names) or 'nothing'})"
            )
        return Selection(default, "DEFAULT_CONFIG")
    for strategy in fallbacks:
        if strategy == "named" and "default" in names:
            return Selection("default", "fallback named")
        if strategy == "single" and len(names) == 1:
            return Selection(names[0], "fallback single")
        if strategy == "empty":
            return Selection(EMPTY, "fallback empty")
    raise ConfigError(
        f"{where} is unset, DEFAULT_CONFIG is empty and no fallback strategy "
        f"({', '.join(fallbacks) or 'none'}) chose one of: {', '.join(names) or 'nothing'}"
    )


def install(srcdir: Path, selection: Selection, dst: Path) -> bool:
    """Write the selected config to ``dst`` (atomically); True when its content changed."""
    content = b"" if selection.name == EMPTY else (srcdir / selection.name).read_bytes()
    try:
        if dst.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, dst)
    return True
