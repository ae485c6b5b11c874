"""The device plugin's and feature discovery's command lines read without a CLI framework, so a
node's plugin and GFD processes never load typer and click (~5 MiB resident, issue 15); their
``--help`` is still typer's (``gpu_operator.cli`` builds it only then).

The forms the typer commands take: ``--name VALUE`` or ``--name=VALUE`` for a value option (a
short one also ``-oVALUE``, and ``-o=VALUE`` as urfave/cli reads it; the last one given wins),
a boolean flag bare or with a value (``--oneshot``, ``--oneshot=false``), nothing else.
Anything else is a usage error: one line, exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn


class UsageError(Exception):
    """A command line the command does not take."""


def parse(
    args: list[str],
    options: Mapping[str, str],
    flags: Mapping[str, Callable[[str | None], tuple[str, Any]]],
) -> dict[str, Any]:
    """``options``: option name → field; ``flags``: flag name → reader of its value (``None``
    when given bare) returning (field, value). Returns the fields given."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, has_value, value = arg.partition("=")
        if name not in options and not arg.startswith("--") and arg[:2] in options:
            name, has_value, value = arg[:2], "=", arg[2:]  # ``-o/path``, as click takes it
        if name in options:
            if not has_value:
                if i + 1 >= len(args):
                    raise UsageError(f"option {name} requires an argument")
                i += 1
                value = args[i]
            out[options[name]] = value
        elif name in flags:
            field, parsed = flags[name](value if has_value else None)
            out[field] = parsed
        else:
            raise UsageError(f"no such option: {arg}")
        i += 1
    return out


def usage_error(command: str, error: UsageError) -> NoReturn:
    """One line on stderr, exit status 2 (as click's usage errors)."""
    print(f"gpu-operator {command}: {error} (see gpu-operator {command} --help)", file=sys.stderr)
    sys.exit(2)
