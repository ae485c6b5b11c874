"""Kubernetes label selectors as strings (``app=x,tier!=db,env in (a,b),!skip``) parsed into a
pure matcher: the ``labelSelector`` the API server emulator serves, and the form
``upgradePolicy.drain.podSelector``, ``waitForCompletion.podSelector`` and
``DRAIN_POD_SELECTOR_LABEL`` take. A malformed selector is a ``ConfigError`` naming it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gpu_operator.errors import ConfigError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|!=|=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    """``in``, ``notin``, ``exists`` or ``!exists`` (``=`` is ``in``, ``!=`` is ``notin``)."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    """All requirements must match; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def and_(self, other: Selector) -> Selector:
        return Selector(self.requirements + other.requirements)


def split_clauses(text: str) -> list[str]:
    """Split on the commas that are not inside ``( )``."""
    out, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += char
    out.append(current)
    return [c for c in out if c.strip()]


def parse_selector(text: str | None, *, source: str = "selector") -> Selector:
    """Parse ``text``; ``source`` (e.g. ``spec.driver.upgradePolicy.drain.podSelector``) goes
    into the error."""
    requirements = []
    for clause in split_clauses(text or ""):
        if m := _SET.match(clause):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            requirements.append(Requirement(m["key"], m["op"], values))
        elif m := _EQ.match(clause):
            op = "notin" if m["op"] == "!=" else "in"
            requirements.append(Requirement(m["key"], op, frozenset({m["value"]})))
        elif m := _EXISTS.match(clause):
            requirements.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise ConfigError(f"{source}: cannot parse label selector clause {clause.strip()!r}")
    return Selector(tuple(requirements))
