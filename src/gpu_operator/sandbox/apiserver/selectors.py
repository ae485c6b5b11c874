"""Label selectors (equality and set-based) and field selectors, parsed once and matched often."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.labelselectors import Requirement, parse_selector, split_clauses
from gpu_operator.sandbox.apiserver.status import bad_request


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse ``labelSelector``; a malformed clause is a 400 naming it."""
    try:
        return parse_selector(text, source=f"labelSelector {text!r}").requirements
    except ConfigError as error:
        raise bad_request(f"unable to parse requirement: {error}") from error


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
    for clause in split_clauses(text):
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
