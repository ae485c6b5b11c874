"""The one precedence engine of the node agents: command-line flag > environment variable >
config file > default, as urfave/cli and upstream's config loaders resolve them.

An agent describes each setting once, as a ``Field``: its flag, its environment variables in
upstream's order (the first one set wins), how the config file gives it, and how text is read.
``resolve(fields, flags, env, config)`` is pure and returns the values that were given (the
dataclass's defaults stand for the rest) and where each came from. Text is read at one place, so
a bad value is one ``ConfigError`` naming the flag, the variable or the config key, whichever way
it came in; a boolean is read by ``gpu_operator.booleans`` (Go's ``strconv.ParseBool`` words),
and an empty boolean variable counts as unset; ``one_of(...)`` takes a word from a fixed list and
refuses any other naming the words; ``integer`` and ``number`` read Go's ``IntFlag`` and our
seconds (an empty variable of either is unset, as urfave/cli skips it). Pure, over the leaves
``booleans`` and ``errors``: every agent builds on it — the device plugin and feature discovery
(flags, variables and a file), the env-only agents (``variable()``), and the typer agents
(validator, config-manager, ``mig``, node-labeler, ``toolkit cdi-generate``) through
``cli_settings.option``, which hands the engine the flag's text untouched.

Why ours and not ``pydantic-settings``: its sources (init kwargs > env > dotenv > secrets) have
no command-line flag given as text to be parsed with the same words as the variable, no ordered
aliases that name the one found in the error, and no "where did this value come from" answer
(feature discovery's output file selects its writer only when given by flag or variable); and
it loads pydantic, which the agents keep off their start path (``cli_params``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from gpu_operator.booleans import parse_bool
from gpu_operator.errors import ConfigError

C = TypeVar("C")
Source = Literal["flag", "env", "config"]


def _no_config(_: object) -> None:
    return None


@dataclass(frozen=True)
class Field(Generic[C]):
    """One setting: ``--flag``, its variables (first set wins), its value in the config file
    (``None``: not there) and the reader of its text (``bool``: Go's boolean words; anything
    else raises ``ValueError`` with a message the engine prefixes with the source)."""

    flag: str
    env: tuple[str, ...]
    parse: Callable[[str], Any]
    from_config: Callable[[C], Any] = _no_config
    empty_is_unset: bool = False
    """An empty variable counts as not set (always so for a boolean); else ``""`` is a value
    (the device plugin's ``KUBELET_SOCKET=""``: serve, don't register)."""


def variable(
    *names: str, parse: Callable[[str], Any] = str, empty_is_unset: bool = True
) -> Field[Any]:
    """A setting of an agent that has no flags and no config file (the driver manager, the MIG
    manager): its variables, first set wins; by default an empty one counts as unset."""
    return Field("", names, parse, empty_is_unset=empty_is_unset)


@dataclass(frozen=True)
class OneOf:
    """A reader that takes one of ``words`` as it is (``one_of``)."""

    words: tuple[str, ...]

    def __call__(self, text: str) -> str:
        if text not in self.words:
            raise ValueError(f"expected one of {', '.join(self.words)}")
        return text


def one_of(*words: str) -> OneOf:
    """A setting that is one of ``words``; another is refused as ``NAME='x': expected one of
    a, b, c``."""
    return OneOf(words)


def integer(text: str) -> int:
    """A whole number in decimal (Go's ``IntFlag``); refused as ``NAME='x': not an integer``."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise ValueError("not an integer") from None


def number(text: str) -> float:
    """A number such as ``5`` or ``0.5`` (seconds); refused as ``NAME='x': not a number``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a number")
    return value


_NAMES_THE_TEXT = (integer, number)
"""Readers whose refusal reads ``NAME='text': why`` (as the boolean's and ``one_of``'s)."""


@dataclass(frozen=True)
class Resolved:
    """The values given (field name → value) and where each came from."""

    values: dict[str, Any]
    sources: dict[str, Source]

    def given_by_user(self, name: str) -> bool:
        """Set by a flag or a variable (not by the config file or the default)."""
        return self.sources.get(name) in ("flag", "env")


def read(field: Field[Any], text: str, where: str) -> Any:
    """``text`` as ``field`` reads it; ``ConfigError`` naming ``where``."""
    if field.parse is bool:
        return parse_bool(text, where)
    if isinstance(field.parse, OneOf) and text not in field.parse.words:
        raise ConfigError(f"{where}={text!r}: expected one of {', '.join(field.parse.words)}")
    try:
        return field.parse(text)
    except ValueError as error:
        if field.parse in _NAMES_THE_TEXT:
            raise ConfigError(f"{where}={text!r}: {error}") from error
        raise ConfigError(f"{where}: {error}") from error


def _value(field: Field[Any], value: Any, where: str) -> Any:
    if isinstance(value, str):
        return read(field, value, where)
    return tuple(value) if isinstance(value, list) else value


def env_value(field: Field[Any], env: Mapping[str, str]) -> tuple[str, str] | None:
    """The first of ``field``'s variables that is set, and its text (an empty boolean, integer
    or number variable, or any empty one of an ``empty_is_unset`` field, is not set); ``None``
    when none is."""
    skip_empty = field.empty_is_unset or field.parse is bool or field.parse in _NAMES_THE_TEXT
    for name in field.env:
        if name in env and not (skip_empty and env[name] == ""):
            return name, env[name]
    return None


def from_env(fields: Mapping[str, Field[Any]], env: Mapping[str, str]) -> dict[str, Any]:
    """The values an agent without flags or config file is given by ``env``."""
    return resolve(fields, {}, env, None).values


def resolve(
    fields: Mapping[str, Field[C]],
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: C,
    *,
    config_source: str = "config file",
) -> Resolved:
    """Each field from its flag (text or an already-read value; ``None`` = not given, and so is
    ``""`` for an ``empty_is_unset`` field), else its first variable set, else the config file;
    a field in none of them is left out."""
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for name, field in fields.items():
        given = flags.get(name)
        if given == "" and field.empty_is_unset:
            given = None  # ``--kubeconfig=`` as ``KUBECONFIG=``: not set
        if given is not None:
            values[name], sources[name] = _value(field, given, field.flag), "flag"
            continue
        found = env_value(field, env)
        if found is not None:
            values[name], sources[name] = read(field, found[1], found[0]), "env"
            continue
        in_file = field.from_config(config)
        if in_file is not None:
            where = f"{config_source}: {field.flag.lstrip('-')}"
            values[name], sources[name] = _value(field, in_file, where), "config"
    return Resolved(values, sources)
