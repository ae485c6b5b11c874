"""Where a container path is on this machine: the one place that remaps paths when a container
runs as a local process (the sandbox's pod runner) instead of inside a mount namespace.

In a real pod, ``/run/nvidia/validations`` inside the container *is* the host directory the
pod's ``hostPath`` volume names; the kernel does the mapping. The sandbox runs the same
commands as ordinary processes, so it describes the container's mounts in one environment
variable, ``GPU_OPERATOR_MOUNTS`` (a JSON object: container mount path → local directory), and
every operand passes its default and configured paths through :func:`host_path` where it builds
its settings. Without the variable (production) every path is returned unchanged.

    GPU_OPERATOR_MOUNTS='{"/run/nvidia/validations": "/tmp/sbx/nodes/gpu-1/run/nvidia/validations"}'
    host_path("/run/nvidia/validations/toolkit-ready")
    # -> /tmp/sbx/nodes/gpu-1/run/nvidia/validations/toolkit-ready
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path, PurePosixPath
from typing import TypeVar

from gpu_operator.errors import ConfigError

MOUNTS_ENV = "GPU_OPERATOR_MOUNTS"


@functools.lru_cache(maxsize=4)
def _table(raw: str) -> tuple[tuple[PurePosixPath, Path], ...]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{MOUNTS_ENV}: not JSON: {error}") from error
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k.startswith("/") and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{MOUNTS_ENV}: expected an object of absolute path -> directory")
    # Longest mount path first, so /run/nvidia/validations wins over /run/nvidia.
    items = sorted(data.items(), key=lambda kv: len(PurePosixPath(kv[0]).parts), reverse=True)
    return tuple((PurePosixPath(k), Path(v)) for k, v in items)


def host_path(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Path:
    """The local path behind container path ``path`` (unchanged outside the sandbox, for a
    relative path, or for a path under no mount)."""
    raw = (os.environ if environ is None else environ).get(MOUNTS_ENV, "")
    text = os.fspath(path)
    if not raw or not text.startswith("/"):
        return Path(text)
    target = PurePosixPath(text)
    for mount, local in _table(raw):
        if target == mount or mount in target.parents:
            return local.joinpath(*target.parts[len(mount.parts) :])
    return Path(text)


def host_str(path: str | os.PathLike[str]) -> str:
    """:func:`host_path` as a string (for settings that keep paths as ``str``)."""
    return str(host_path(path))


T = TypeVar("T")


def remap(settings: T, *fields: str) -> T:
    """A copy of the frozen dataclass ``settings`` with the named path fields (``Path`` or
    ``str``; ``None`` and ``""`` left alone) passed through :func:`host_path`. The same
    object when no mount table is set."""
    if not os.environ.get(MOUNTS_ENV):
        return settings
    changes: dict[str, object] = {}
    for name in fields:
        value = getattr(settings, name)
        if isinstance(value, Path):
            changes[name] = host_path(value)
        elif isinstance(value, str) and value:
            changes[name] = host_str(value)
    return dataclasses.replace(settings, **changes)  # type: ignore[type-var]
