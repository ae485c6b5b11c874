"""Option values converted without pydantic: what every agent's command line needs at start.

typer (0.2x) converts each option value through a pydantic ``TypeAdapter``; importing pydantic
and building an adapter per option costs an agent ~10 MiB and 0.1-0.2 s before it does anything,
for options that are all plain ``str``, ``int``, ``float``, ``bool``, ``Path`` or lists of these.
``install`` gives such options a converter of their own with typer's semantics (``None``
stays ``None``, a missing list is ``()``, a boolean in Go's words (``gpu_operator.booleans``: the
variables these options read are upstream's urfave/cli ones), an existing path
must be readable); an option of any other type, or with constraints (``min``, ``exists``, a
``parser``...), keeps typer's. Where typer has no per-parameter converter (other versions), this
changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
import typer.core

from gpu_operator.booleans import ACCEPTED, FALSE_WORDS, TRUE_WORDS

# ParameterInfo fields that, when set, ask for more than a plain conversion.
_CONSTRAINTS = (
    "parser",
    "click_type",
    "min",
    "max",
    "clamp",
    "exists",
    "resolve_path",
    "allow_dash",
    "writable",
    "path_type",
    "formats",
)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not a boolean; use one of {ACCEPTED}")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid integer") from None


def _to_float(value: Any) -> float:
    if isinstance(value, float):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid number") from None


def _to_str(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _to_path(value: Any) -> Path:
    path = Path(os.fsdecode(value))
    if path.exists() and not os.access(path, os.R_OK):
        raise ValueError(f"path {str(path)!r} is not readable")
    return path


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    Path: _to_path,
}


class PlainParam:
    """The converter typer calls for one option (its ``RuntimeParam.coerce`` contract)."""

    def __init__(self, convert: Callable[[Any], Any], many: bool) -> None:
        self.convert = convert
        self.many = many

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        if multi and isinstance(value, str):
            raise typer.BadParameter("Value must be an iterable.", ctx=ctx, param=param)
        try:
            if self.many:
                return [self.convert(item) for item in value]
            return self.convert(value)
        except ValueError as error:
            raise typer.BadParameter(str(error), ctx=ctx, param=param) from None


def plain_param(param: Any) -> PlainParam | None:
    """A pydantic-free converter for ``param``, or ``None`` where typer's own is needed."""
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    if descriptor is None or info is None or getattr(descriptor, "file_annotation", None):
        return None
    if any(getattr(info, name, None) not in (None, False) for name in _CONSTRAINTS):
        return None
    if any(getattr(info, name, True) is False for name in ("file_okay", "dir_okay", "readable")):
        return None
    annotation = descriptor.annotation
    many = get_origin(annotation) is list
    if many:
        (annotation,) = get_args(annotation) or (None,)
    convert = _CONVERTERS.get(annotation)
    return PlainParam(convert, many) if convert is not None else None


def install() -> None:
    """Make typer try ``plain_param`` before building its own converter, for every option of
    this process (the help option and typer's own included). Idempotent."""
    base = getattr(typer.core, "_TyperParameter", None)
    original = getattr(base, "get_runtime_param", None)
    if base is None or original is None or getattr(original, "plain", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = plain_param(self)
        return self._runtime_param if self._runtime_param is not None else original(self)

    get_runtime_param.plain = True  # type: ignore[attr-defined]
    base.get_runtime_param = get_runtime_param
