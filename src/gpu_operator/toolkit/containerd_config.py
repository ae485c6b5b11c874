"""containerd's ``config.toml``, versions 1, 2 and 3: where the CRI plugin keeps its runtimes
in each version, and the edits that add ours (pure: a parsed document in, ``Edit`` s out).

    version 1 (containerd 1.x, legacy)  plugins.cri               .containerd.runtimes.<name>
    version 2 (containerd 1.x)          plugins."io.containerd.grpc.v1.cri"     ."   "
    version 3 (containerd 2.x)          plugins."io.containerd.cri.v1.runtime"  ."   "
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.documents import Append, Edit, get

CRI_PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
DEFAULT_CDI_SPEC_DIRS = ["/etc/cdi", "/var/run/cdi"]


@dataclass(frozen=True)
class Handler:
    """One runtime handler (a RuntimeClass's ``handler``) and the binary it runs; ``binary``
    None = the plain OCI runtime (``runc``), GPUs then come only through CDI."""

    name: str
    binary: str | None


def parse_toml(text: str, *, source: str) -> tomlkit.TOMLDocument:
    """A TOML document; a syntax error is a ``ConfigError`` naming file and line."""
    try:
        return tomlkit.parse(text)
    except ParseError as error:
        raise ConfigError(f"{source}:{error.line}: {error}") from error


def _top_key_line(doc: Any, key: str) -> int | None:
    """The 1-based line of a top-level ``key = …`` (tomlkit keeps the text, not positions;
    top-level keys come before the first table header)."""
    if not isinstance(doc, tomlkit.TOMLDocument):
        return None
    pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(doc.as_string().splitlines(), start=1):
        if line.lstrip().startswith("["):
            return None
        if pattern.match(line):
            return number
    return None


def _at(doc: Any, key: str, source: str) -> str:
    line = _top_key_line(doc, key)
    return f"{source}:{line}" if line else source


def config_version(doc: Any, *, source: str) -> int:
    """The file's ``version`` (containerd reads a file without one as version 1)."""
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in CRI_PLUGIN:
        raise ConfigError(
            f"{_at(doc, 'version', source)}: version = {version!r}: expected 1, 2 or 3"
        )
    plugins = doc.get("plugins")
    if plugins is not None and not hasattr(plugins, "keys"):
        raise ConfigError(
            f"{_at(doc, 'plugins', source)}: plugins: expected a table, "
            f"got {type(plugins).__name__}"
        )
    return int(version)


def plugin_path(version: int) -> tuple[str, ...]:
    return ("plugins", CRI_PLUGIN[version])


def runtimes_path(version: int) -> tuple[str, ...]:
    return (*plugin_path(version), "containerd", "runtimes")


def _base_runtime(doc: Any, version: int) -> dict[str, Any]:
    """The settings of the current default runtime (usually ``runc``): new handlers copy its
    ``options`` (``SystemdCgroup`` and friends) so GPU pods run like every other pod."""
    containerd = get(doc, (*plugin_path(version), "containerd")) or {}
    name = containerd.get("default_runtime_name", "runc") if hasattr(containerd, "get") else "runc"
    base = get(doc, (*runtimes_path(version), str(name)))
    if base is None or not hasattr(base, "get"):
        base = get(doc, (*runtimes_path(version), "runc"))
    return copy.deepcopy(base.unwrap()) if base is not None and hasattr(base, "unwrap") else {}


def plan(
    doc: Any,
    *,
    source: str,
    handlers: Sequence[Handler],
    default: str | None,
    runtime_type: str,
    cdi: bool,
) -> list[Edit]:
    """The edits that make ``doc`` run GPU containers through ``handlers``."""
    version = config_version(doc, source=source)
    base = _base_runtime(doc, version)
    base_options = {k: v for k, v in dict(base.get("options") or {}).items() if k != "BinaryName"}
    edits: list[Edit] = []
    for handler in handlers:
        path = (*runtimes_path(version), handler.name)
        edits.append(Edit((*path, "runtime_type"), runtime_type))
        for key, value in base_options.items():
            if not isinstance(value, dict):
                edits.append(Edit((*path, "options", key), value))
        if handler.binary is not None:
            edits.append(Edit((*path, "options", "BinaryName"), handler.binary))
    if default is not None:
        edits.append(Edit((*plugin_path(version), "containerd", "default_runtime_name"), default))
    if cdi:
        edits.append(Edit((*plugin_path(version), "enable_cdi"), True))
        if get(doc, (*plugin_path(version), "cdi_spec_dirs")) is None:
            edits.append(Edit((*plugin_path(version), "cdi_spec_dirs"), DEFAULT_CDI_SPEC_DIRS))
    return edits


def drop_in_document(main: Any, *, source: str) -> tomlkit.TOMLDocument:
    """The start of a drop-in file for ``main``: its version and, below version 3, a copy of
    its CRI plugin table (containerd 1.x replaces a plugin's whole table on import, so a
    drop-in that held only our runtimes would drop ``runc`` and every CRI setting)."""
    version = config_version(main, source=source)
    doc = tomlkit.document()
    doc["version"] = version
    if version < 3:
        cri = get(main, plugin_path(version))
        if cri is not None and hasattr(cri, "unwrap"):
            plugins = tomlkit.table(is_super_table=True)
            plugins[CRI_PLUGIN[version]] = cri.unwrap()
            doc["plugins"] = plugins
    return doc


def import_edit(drop_in_host_path: str) -> Edit:
    """The top-level ``imports`` entry that loads our drop-in."""
    return Edit(("imports",), Append(drop_in_host_path))


def runtime_names(doc: Any) -> dict[str, str | None]:
    """Every configured runtime handler and its ``BinaryName`` (None: the plain runtime)."""
    version = config_version(doc, source="config")
    runtimes = get(doc, runtimes_path(version)) or {}
    found: dict[str, str | None] = {}
    for name, table in runtimes.items():
        options = table.get("options") if hasattr(table, "get") else None
        binary = options.get("BinaryName") if options is not None else None
        found[str(name)] = str(binary) if binary else None
    return found
