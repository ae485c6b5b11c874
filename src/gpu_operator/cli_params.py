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

The typer agents' settings go through ``gpu_operator.settings_engine`` like every other agent's:
``option(field)`` declares a field's flag with no value and no ``envvar`` of its own (click would
read the variable by its rules, not upstream's), so the command hands the flag's text, or
``None``, to ``resolve``; ``go_flags(fields)`` is the command class that reads a boolean flag
as urfave/cli does (``--oneshot``, ``--oneshot=false``, ``-w=false``; ours: ``-w false``) and a
flag spelt with one dash (``-node-name x``) as Go's ``flag`` package does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
import typer.core

from gpu_operator.booleans import ACCEPTED, FALSE_WORDS, TRUE_WORDS
from gpu_operator.settings_engine import Field, OneOf, integer, number, resolve

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


def option(
    field: Field[Any],
    *aliases: str,
    help: str = "",
    default: object = None,
    hidden: bool = False,
) -> Any:
    """The typer option of ``field`` (its flag, then ``aliases``): ``None`` when not given, text
    otherwise, for ``settings_engine.resolve``; the help names the variables and ``default``."""
    notes = [f"env: {', '.join(field.env)}"] if field.env else []
    if default not in (None, ""):
        notes.append(f"default: {default}")
    text = f"{help} ({'; '.join(notes)})".strip() if notes else help
    names = (field.flag, *aliases) if field.flag else aliases
    return typer.Option(
        None, *names, help=text, show_default=False, hidden=hidden, metavar=_metavar(field)
    )


def _metavar(field: Field[Any]) -> str | None:
    if field.parse is bool:
        return "[=BOOL]"
    if isinstance(field.parse, OneOf):
        return f"[{'|'.join(field.parse.words)}]"
    metavars: dict[Callable[[str], Any], str] = {integer: "INTEGER", number: "NUMBER"}
    return metavars.get(field.parse)


KUBECONFIG: Field[Any] = Field("--kubeconfig", ("KUBECONFIG",), Path, empty_is_unset=True)
"""Every agent's ``--kubeconfig`` flag and client-go's ``KUBECONFIG`` (empty: unset)."""


OPERATOR_NAMESPACE: Field[Any] = Field(
    "--namespace", ("OPERATOR_NAMESPACE",), str, empty_is_unset=True
)
"""The operands' namespace: ``--namespace`` or upstream's ``OPERATOR_NAMESPACE``."""


def setting(
    field: Field[Any], flag: Any, default: Any, env: Mapping[str, str] | None = None
) -> Any:
    """One field's value: ``flag`` (its text, ``None``: not given), else its variable, else
    ``default``; ``ConfigError`` naming the flag or variable of a bad one."""
    values = resolve({"value": field}, {"value": flag}, os.environ if env is None else env, None)
    return values.values.get("value", default)


def kubeconfig(flag: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The kubeconfig ``--kubeconfig`` or ``KUBECONFIG`` names (``None``: neither)."""
    path: Path | None = setting(KUBECONFIG, flag, None, env)
    return path


def given(fields: Mapping[str, Field[Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """The values among a command's ``params`` that belong to ``fields``."""
    return {name: value for name, value in params.items() if name in fields}


def go_args(
    args: Sequence[str], params: Sequence[Any], booleans: Collection[str], *, group: bool
) -> list[str]:
    """``args`` as click can parse them, read as Go's ``flag`` package reads them: a boolean
    option (a param named in ``booleans``) bare is ``=true``, ``-w=false`` and ``--with-wait=false``
    give its value (so does ``-w false``: a Go boolean word after it, ours); ``-name`` is
    ``--name`` where that is an option; ``-c=x`` is ``-c x``. A group stops at its subcommand."""
    options: dict[str, Any] = {}
    for param in params:
        for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                options[name] = param
    words = (*TRUE_WORDS, *FALSE_WORDS)
    out: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--" or not arg.startswith("-") or arg == "-":
            out.append(arg)
            if arg == "--" or group:
                return out + rest
            continue
        name, eq, value = arg.partition("=")
        if name not in options and not name.startswith("--") and "-" + name in options:
            name = "-" + name
        param = options.get(name)
        if param is None:
            out.append(arg)  # click's to judge: a short cluster, -cVALUE, or no such option
        elif param.name in booleans:
            if not eq and rest and rest[0] in words:
                value, eq = rest.pop(0), "="
            long = next((o for o in param.opts if o.startswith("--")), name)
            out.append(f"{long}={value if eq else 'true'}")
        elif getattr(param, "is_flag", False) or getattr(param, "count", False):
            out.append(name if not eq else arg)
        elif eq:
            out += [name, value]
        else:
            out.append(name)
            if rest:
                out.append(rest.pop(0))
    return out


def go_flags(fields: Mapping[str, Field[Any]], *, group: bool = False) -> Any:
    """The click command class (``group``: of a typer callback) whose arguments ``go_args``
    reads first, the boolean fields of ``fields`` as urfave/cli's boolean flags."""
    booleans = frozenset(name for name, field in fields.items() if field.parse is bool)
    base: Any = typer.core.TyperGroup if group else typer.core.TyperCommand

    class GoFlags(base):  # type: ignore[misc]
        def parse_args(self, ctx: Any, args: list[str]) -> Any:
            return super().parse_args(ctx, go_args(args, self.params, booleans, group=group))

    GoFlags.__name__ = GoFlags.__qualname__ = f"GoFlags{base.__name__}"
    return GoFlags
