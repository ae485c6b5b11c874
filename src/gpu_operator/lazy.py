"""A package's names loaded on first use (PEP 562 ``__getattr__``), so importing the package
costs nothing until a name is read; each package keeps its own table of name → home module."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: imports a name's home on first read and keeps
    the value in ``namespace`` (the package's globals), so the next read is a plain lookup."""

    def load(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return load
