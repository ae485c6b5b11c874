"""MIG profile names: parse and print ``[<C>c.]<G>g.<GB>gb[+me|+me.all|+gfx|-me]``, resolve a
name against one GPU's GI profiles, and the config-name form (``+`` → ``.``).

Names come from the hardware (``gpu.naming`` derives them from NVML numbers); this module never
holds a table of names or ids, it only matches what one device reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInstanceProfile

_ATTR = r"(?:me\.all|me|gfx)"
_NAME = re.compile(
    rf"(?:(?P<c>[1-9]\d*)c\.)?(?P<g>[1-9]\d*)g\.(?P<gb>[1-9]\d*)gb"
    rf"(?P<suffix>\+{_ATTR}(?:,{_ATTR})*|-me)?"
)
# Compute-instance sizes a GI of ``G`` slices offers (mig.md §1.5): 4g has no 3c.
_CI_SIZES = (1, 2, 3, 4)


@dataclass(frozen=True, order=True)
class ProfileName:
    """A parsed profile name; ``ci_slices`` is set only for a CI smaller than its GI."""

    gi_slices: int
    memory_gb: int
    suffix: str = ""
    """``""``, ``"+me"``, ``"+me.all"``, ``"+gfx"``, ``"-me"`` (or several ``+a,b``)."""
    ci_slices: int | None = None

    @property
    def gi_name(self) -> str:
        return f"{self.gi_slices}g.{self.memory_gb}gb{self.suffix}"

    @property
    def gi(self) -> ProfileName:
        """The GPU-instance part of a compute-instance name."""
        return ProfileName(self.gi_slices, self.memory_gb, self.suffix)

    @property
    def is_ci(self) -> bool:
        return self.ci_slices is not None

    @property
    def compute_slices(self) -> int:
        """Compute slices of the MIG device this name stands for."""
        return self.ci_slices if self.ci_slices is not None else self.gi_slices

    def __str__(self) -> str:
        prefix = f"{self.ci_slices}c." if self.ci_slices is not None else ""
        return prefix + self.gi_name

    @property
    def config_name(self) -> str:
        """The form used in config names and resources: ``1g.5gb+me`` → ``1g.5gb.me``."""
        return config_name(str(self))


def parse_profile(text: str) -> ProfileName:
    """Parse a profile name; ``ConfigError`` says what is wrong and what a name looks like."""
    match = _NAME.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"{text!r} is not a MIG profile name (expected [<C>c.]<G>g.<GB>gb[+me|+me.all|"
            f"+gfx|-me], e.g. 1g.5gb, 1g.10gb+me, 1c.3g.20gb)"
        )
    g, gb = int(match["g"]), int(match["gb"])
    c = int(match["c"]) if match["c"] else None
    if c is not None:
        if c == g:
            c = None  # "3c.3g.20gb" is the full CI: the same device as "3g.20gb"
        elif c > g:
            raise ConfigError(f"{text!r}: a compute instance ({c}c) cannot exceed its GPU instance")
        elif c not in _CI_SIZES or (g == 4 and c == 3):
            raise ConfigError(f"{text!r}: a {g}g GPU instance has no {c}c compute instances")
    return ProfileName(g, gb, match["suffix"] or "", c)


def config_name(profile: str) -> str:
    """``+`` → ``.``, as the operator's config names spell profiles (``all-1g.5gb.me``)."""
    return profile.replace("+", ".")


def resolve(name: ProfileName, profiles: Sequence[GpuInstanceProfile]) -> GpuInstanceProfile:
    """The GI profile of ``name`` among one GPU's profiles; ``ConfigError`` lists the choices."""
    wanted = name.gi_name
    for profile in profiles:
        if profile.name == wanted:
            return profile
    choices = ", ".join(p.name for p in profiles) or "none (MIG not supported)"
    raise ConfigError(f"profile {name} does not exist on this GPU (it has {choices})")


def base_profiles(profiles: Iterable[GpuInstanceProfile]) -> list[GpuInstanceProfile]:
    """Profiles without attributes (no ``+me``, ``-me``, ``+gfx``)."""
    return [p for p in profiles if not parse_profile(p.name).suffix]


def format_counts(counts: dict[str, int]) -> str:
    """``2×1g.5gb + 2g.10gb``: a multiset of names, largest first, for messages."""
    ordered = sorted(counts.items(), key=lambda kv: sort_key(kv[0]))
    parts = [(f"{n}×{name}" if n != 1 else name) for name, n in ordered if n > 0]
    return " + ".join(parts) or "nothing"


def sort_key(name: str) -> tuple[int, int, int, str]:
    """Largest GI first, then largest CI, then memory: mig-parted's creation order."""
    p = parse_profile(name)
    return (-p.gi_slices, -p.compute_slices, -p.memory_gb, str(p))
