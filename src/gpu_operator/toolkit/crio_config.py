"""CRI-O's ``crio.conf`` (and its ``crio.conf.d`` drop-ins): the edits that add our runtime
handlers under ``crio.runtime.runtimes`` (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.containerd_config import Handler
from gpu_operator.toolkit.documents import Edit, get

RUNTIMES_PATH = ("crio", "runtime", "runtimes")


def check(doc: Any, *, source: str) -> None:
    for depth in range(1, len(RUNTIMES_PATH) + 1):
        node = get(doc, RUNTIMES_PATH[:depth])
        if node is not None and not hasattr(node, "keys"):
            raise ConfigError(f"{source}: {'.'.join(RUNTIMES_PATH[:depth])}: expected a table")


def plan(
    doc: Any, *, source: str, handlers: Sequence[Handler], default: str | None, oci: str = "runc"
) -> list[Edit]:
    check(doc, source=source)
    edits: list[Edit] = []
    for handler in handlers:
        path = (*RUNTIMES_PATH, handler.name)
        edits.append(Edit((*path, "runtime_path"), handler.binary or f"/usr/bin/{oci}"))
        edits.append(Edit((*path, "runtime_type"), "oci"))
    if default is not None:
        edits.append(Edit(("crio", "runtime", "default_runtime"), default))
    return edits


def runtime_names(doc: Any) -> dict[str, str | None]:
    runtimes = get(doc, RUNTIMES_PATH) or {}
    return {
        str(name): (str(table["runtime_path"]) if "runtime_path" in table else None)
        for name, table in runtimes.items()
    }
