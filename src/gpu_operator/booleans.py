"""Boolean settings read as NVIDIA's Go tools read them.

Every upstream agent (k8s-mig-manager, gpu-feature-discovery, the device plugin) declares its
boolean flags with urfave/cli, which parses an environment variable or a ``--flag=VALUE`` with
Go's ``strconv.ParseBool``: exactly ``1 t T TRUE true True`` and ``0 f F FALSE false False``,
anything else is an error that stops the program. An empty environment variable counts as
unset. ``parse_bool`` is that rule with our one-line error naming the source (flag or variable)
and the accepted words; a leaf module, so any settings code can use it.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpu_operator.errors import ConfigError

TRUE_WORDS = ("1", "t", "T", "TRUE", "true", "True")
FALSE_WORDS = ("0", "f", "F", "FALSE", "false", "False")
ACCEPTED = f"{', '.join(TRUE_WORDS)} or {', '.join(FALSE_WORDS)}"
"""The accepted words, as error messages list them."""


def parse_bool(text: str, where: str) -> bool:
    """``text`` as ``strconv.ParseBool`` reads it; ``ConfigError`` naming ``where`` (a flag
    such as ``--oneshot`` or a variable such as ``WITH_REBOOT``) and the accepted words."""
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(f"{where}={text!r}: not a boolean; use one of {ACCEPTED}")


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """The boolean environment variable ``name``; unset or empty gives ``default`` (as
    urfave/cli treats an empty variable)."""
    text = env.get(name, "")
    return default if text == "" else parse_bool(text, name)
