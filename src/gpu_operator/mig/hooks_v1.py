"""mig-parted's hooks file, version ``v1`` (``api/hooks/v1``): commands run around ``apply``.

    version: v1
    hooks:
      apply-start:      [{command: /bin/bash, args: [...], envs: {K: V}, workdir: /etc/...}]
      pre-apply-mode:   [...]
      pre-apply-config: [...]
      apply-exit:       [...]

Parse with ``load_hooks(text, source=...)``; errors read ``file:line: key.path: problem``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpu_operator.errors import ConfigError
from gpu_operator.mig.sourcemap import config_error, load_yaml

HookName = Literal["apply-start", "pre-apply-mode", "pre-apply-config", "apply-exit"]
HOOK_NAMES: tuple[HookName, ...] = (
    "apply-start",
    "pre-apply-mode",
    "pre-apply-config",
    "apply-exit",
)


class HookCommand(BaseModel):
    """One command: run with ``args`` in ``workdir``, its environment made of ``envs`` with the
    apply flags' environment variables over them (nothing inherited; the flags win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    envs: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None


class HooksSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["v1"]
    hooks: dict[HookName, list[HookCommand]] = Field(default_factory=dict)


def load_hooks(text: str, source: str = "<hooks>") -> HooksSpec:
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the hooks file must be a mapping with version and hooks")
    try:
        return HooksSpec.model_validate(data)
    except ValidationError as error:
        raise config_error(error, source, lines) from error
