"""Plain readers for the values of a parsed YAML/JSON config, with pydantic's lax rules and
its wording: what the device plugin's v1 config model did with pydantic, without loading
pydantic (~13 MiB resident, issue 15) on the plugin's and feature discovery's start path.

Each reader takes the value and its location (the key path) and returns the value read, or
raises ``Invalid(loc, message)``; ``section`` reads a mapping into a frozen dataclass through a
table of ``Key``s, in the table's order, then refuses unknown keys, then runs the section's own
check: the first error is the one pydantic listed first. The messages are pydantic's (``Field
required``, ``Input should be a valid boolean``...), so the errors users see did not change;
``tests/unit/deviceplugin/test_dp_config_parity.py`` holds the two side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Loc = tuple[str | int, ...]
Reader = Callable[[Any, Loc], Any]
T = TypeVar("T")

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_INT64 = range(-(2**63), 2**63)
_INTEGRAL_TEXT = re.compile(r"^[+-]?\d+\.0*$")
UNKNOWN_KEY = "unknown key (check its spelling and where it is nested)"
REQUIRED = object()
"""A ``Key`` default: the key must be given (``Field required``)."""


class Invalid(ValueError):
    """A value that can't be read: where (the key path) and why."""

    def __init__(self, loc: Loc, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return None


def boolean(value: Any, loc: Loc) -> bool:
    """``True``/``False``, 0/1 (also 0.0/1.0) and the words 1/0, on/off, t/f, true/false, y/n,
    yes/no in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value in (0, 1):
            return bool(value)
        if value in _INT64:
            raise Invalid(loc, "Input should be a valid boolean, unable to interpret input")
    elif isinstance(value, float):
        if value in (0.0, 1.0):
            return bool(value)
        if value.is_integer():
            raise Invalid(loc, "Input should be a valid boolean, unable to interpret input")
    elif (text := _text(value)) is not None:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise Invalid(loc, "Input should be a valid boolean, unable to interpret input")
    raise Invalid(loc, "Input should be a valid boolean")


def integer(value: Any, loc: Loc) -> int:
    """An int (a bool counts as 0/1), a float without a fractional part, or numeric text."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(loc, "Input should be a finite number")
        if not value.is_integer():
            raise Invalid(
                loc, "Input should be a valid integer, got a number with a fractional part"
            )
        return int(value)
    text = _text(value)
    if text is None:
        raise Invalid(loc, "Input should be a valid integer")
    stripped = text.strip()
    if _INTEGRAL_TEXT.match(stripped):
        stripped = stripped.split(".")[0]
    try:
        return int(stripped)
    except ValueError:
        raise Invalid(
            loc, "Input should be a valid integer, unable to parse string as an integer"
        ) from None


def string(value: Any, loc: Loc) -> str:
    text = _text(value)
    if text is None:
        raise Invalid(loc, "Input should be a valid string")
    return text


def at_least(minimum: int) -> Reader:
    def read(value: Any, loc: Loc) -> int:
        number = integer(value, loc)
        if number < minimum:
            raise Invalid(loc, f"Input should be greater than or equal to {minimum}")
        return number

    return read


def allowed_text(values: Sequence[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``: the words of a literal, as pydantic lists
    them."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def one_of(values: Sequence[str]) -> Reader:
    """One of fixed words, exactly."""

    def read(value: Any, loc: Loc) -> str:
        if isinstance(value, str) and value in values:
            return value
        raise Invalid(loc, f"{value!r} is not allowed: {allowed_text(values)}")

    return read


def optional(read: Reader) -> Reader:
    """``None`` (YAML ``null``) is no value."""
    return lambda value, loc: None if value is None else read(value, loc)


def list_of(item: Reader, *, min_length: int = 0) -> Reader:
    def read(value: Any, loc: Loc) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise Invalid(loc, "Input should be a valid list")
        items = [item(v, (*loc, i)) for i, v in enumerate(value)]
        if len(items) < min_length:
            plural = "item" if min_length == 1 else "items"
            raise Invalid(
                loc,
                f"List should have at least {min_length} {plural} after validation, "
                f"not {len(items)}",
            )
        return items

    return read


def checked(read: Reader, check: Callable[[Any], None]) -> Reader:
    """``read``, then ``check`` the value (a ``ValueError`` is the message at this key)."""

    def run(value: Any, loc: Loc) -> Any:
        out = read(value, loc)
        try:
            check(out)
        except Invalid:
            raise
        except ValueError as error:
            raise Invalid(loc, str(error)) from None
        return out

    return run


def mapped(read: Reader, convert: Callable[[Any], Any]) -> Reader:
    """``read``, then ``convert`` the value (a ``ValueError`` is the message at this key)."""

    def run(value: Any, loc: Loc) -> Any:
        out = read(value, loc)
        try:
            return convert(out)
        except Invalid:
            raise
        except ValueError as error:
            raise Invalid(loc, str(error)) from None

    return run


def before(prepare: Callable[[Any], Any], read: Reader) -> Reader:
    """``prepare`` the raw value (a ``ValueError`` is the message at this key), then ``read``."""

    def run(value: Any, loc: Loc) -> Any:
        try:
            value = prepare(value)
        except ValueError as error:
            raise Invalid(loc, str(error)) from None
        return read(value, loc)

    return run


@dataclass(frozen=True)
class Key:
    """One key of a section: its name, its reader and its default (``REQUIRED``: must be
    given; a callable: called for a fresh default)."""

    name: str
    read: Reader
    default: Any = None


def section(
    cls: Callable[..., T],
    keys: Sequence[Key],
    *,
    check: Callable[[T], None] | None = None,
    name: str | None = None,
) -> Callable[[Any, Loc], T]:
    """A reader of a mapping into ``cls(**values)``: the keys in ``keys``' order (missing ones
    get their default), then no other key, then ``check`` (a ``ValueError`` is the message at
    the section)."""
    known = {k.name for k in keys}
    title = name or getattr(cls, "__name__", "section")

    def read(value: Any, loc: Loc) -> T:
        if not isinstance(value, dict):
            raise Invalid(loc, f"Input should be a valid dictionary or instance of {title}")
        values: dict[str, Any] = {}
        for key in keys:
            if key.name in value:
                values[key.name] = key.read(value[key.name], (*loc, key.name))
            elif key.default is REQUIRED:
                raise Invalid((*loc, key.name), "Field required")
            elif callable(key.default):
                values[key.name] = key.default()
            else:
                values[key.name] = key.default
        for extra in value:
            if not isinstance(extra, str):
                raise Invalid((*loc, extra), "Keys should be strings")
            if extra not in known:
                raise Invalid((*loc, extra), UNKNOWN_KEY)
        out = cls(**values)
        if check is not None:
            try:
                check(out)
            except ValueError as error:
                raise Invalid(loc, str(error)) from None
        return out

    return read
