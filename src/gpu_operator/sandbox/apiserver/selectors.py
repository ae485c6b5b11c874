"""Label selectors (equality and set-based) and field selectors, parsed once and matched often."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.sandbox.apiserver.status import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|!=|=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    """One clause: ``key op values`` with op in ``= != in notin exists !exists``."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    clauses, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            clauses.append(current)
            current = ""
        else:
            current += char
    clauses.append(current)
    return [c for c in clauses if c.strip()]


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse ``labelSelector``; a malformed clause is a 400 naming it."""
    if not text:
        return ()
    out = []
    for clause in _split_clauses(text):
        if m := _SET_RE.match(clause):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            out.append(Requirement(m["key"], "in" if m["op"] == "in" else "notin", values))
        elif m := _EQ_RE.match(clause):
            op = "!=" if m["op"] == "!=" else "="
            out.append(Requirement(m["key"], op, frozenset({m["value"]})))
        elif m := _EXISTS_RE.match(clause):
            out.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise bad_request(
                f"unable to parse requirement: {clause.strip()!r} in labelSelector {text!r}"
            )
    return tuple(out)


def labels_match(selector: tuple[Requirement, ...], obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(req.matches(labels) for req in selector)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str


def parse_field_selector(
    text: str | None, supported: frozenset[str]
) -> tuple[FieldRequirement, ...]:
    """Parse ``fieldSelector``; a field the resource cannot select on is a 400 naming it."""
    if not text:
        return ()
    out = []
    for clause in _split_clauses(text):
        for op in ("==", "!=", "="):
            if op in clause:
                path, value = (part.strip() for part in clause.split(op, 1))
                break
        else:
            raise bad_request(f"invalid selector: {clause.strip()!r}; expected FIELD=VALUE")
        if path not in supported:
            raise bad_request(f"field label not supported: {path}")
        out.append(FieldRequirement(path, op != "!=", value))
    return tuple(out)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The selectable string value of ``path`` (missing fields read as ``""``)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(selector: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    return all((field_value(obj, r.path) == r.value) == r.equal for r in selector)


@dataclass(frozen=True)
class Selector:
    """A request's label and field selectors together."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)
