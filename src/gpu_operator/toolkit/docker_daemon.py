"""Docker's ``daemon.json``: parse it keeping key order, the edits that add our runtimes,
``default-runtime`` and ``features.cdi``, and render it in the file's own indentation (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.containerd_config import Handler
from gpu_operator.toolkit.documents import Edit


def parse(text: str, *, source: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}:{error.lineno}: {error.msg} (column {error.colno})") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}:1: expected a JSON object, got {type(doc).__name__}")
    runtimes = doc.get("runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        raise ConfigError(f"{source}: runtimes: expected an object")
    return doc


def indent_of(text: str) -> int:
    match = re.search(r"\n( +)\"", text)
    return len(match.group(1)) if match else 4


def render(doc: dict[str, Any], *, indent: int = 4) -> str:
    return json.dumps(doc, indent=indent) + "\n"


def plan(handlers: Sequence[Handler], *, default: str | None, cdi: bool) -> list[Edit]:
    edits: list[Edit] = []
    for handler in handlers:
        edits.append(Edit(("runtimes", handler.name, "path"), handler.binary or "runc"))
        edits.append(Edit(("runtimes", handler.name, "args"), []))
    if default is not None:
        edits.append(Edit(("default-runtime",), default))
    if cdi:
        edits.append(Edit(("features", "cdi"), True))
    return edits


def runtime_names(doc: dict[str, Any]) -> dict[str, str | None]:
    return {str(k): v.get("path") for k, v in (doc.get("runtimes") or {}).items()}
