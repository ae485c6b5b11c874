"""The typer agents' settings through ``gpu_operator.settings_engine``, like every agent's.

``option(field)`` declares a field's flag with no value and no ``envvar`` of its own (click would
read the variable by rules of its own, not urfave/cli's), so the command hands the flag's text,
or ``None``, to ``settings_engine.resolve``; the help names the variables and the default.
``go_flags(fields)`` is the command's click class: it reads the command line as Go's ``flag``
package does before click parses it — a boolean flag bare or with a value (``--oneshot``,
``--oneshot=false``, ``-w=false``; ours: ``-w false``), ``-c=x``, a long flag spelt with one
dash (``-node-name x``). ``KUBECONFIG`` and ``OPERATOR_NAMESPACE`` are the fields many commands
share, ``setting`` resolves one field alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
import typer.core

from gpu_operator.booleans import FALSE_WORDS, TRUE_WORDS
from gpu_operator.settings_engine import Field, OneOf, integer, number, resolve


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
    ``--name`` and ``--c`` is ``-c`` where that is an option; ``-c=x`` is ``-c x``. A group
    stops at its subcommand."""
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
            name = "-" + name  # -node-name: Go takes one dash or two for any flag
        elif name not in options and name.startswith("--") and name[1:] in options:
            name = name[1:]  # --c, --ns
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
