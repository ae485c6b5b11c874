"""Object validation: metadata rules every kind shares, and a CRD's OpenAPI v3 schema (types,
required fields, enums, bounds, patterns) with pruning of unknown fields, as structural schemas do.

Each check returns ``(field path, problem)`` causes; the caller turns them into one 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

Cause = tuple[str, str]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _quote(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


def check_name(name: Any, rule: str) -> list[Cause]:
    """``rule`` is ``label`` (namespaces, services), ``subdomain`` or ``segment`` (RBAC names)."""
    where = "metadata.name"
    if not isinstance(name, str) or not name:
        return [(where, "Required value: name or generateName is required")]
    if rule == "segment":
        if name in (".", "..") or "/" in name or "%" in name:
            return [(where, f"Invalid value: {_quote(name)}: may not contain '/' or '%'")]
        return []
    pattern, limit = (_DNS_LABEL, 63) if rule == "label" else (_DNS_SUBDOMAIN, 253)
    if len(name) > limit or not pattern.match(name):
        what = "RFC 1123 label" if rule == "label" else "RFC 1123 subdomain"
        return [
            (
                where,
                f"Invalid value: {_quote(name)}: a lowercase {what} must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character",
            )
        ]
    return []


def _check_label_key(key: str, where: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    bad = (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or (
        len(name) > 63 or not _LABEL_NAME.match(name)
    )
    return [(where, f"Invalid value: {_quote(key)}: not a valid label key")] if bad else []


def check_metadata(meta: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        return [("metadata.labels", "Invalid value: must be a map of string to string")]
    for key, value in labels.items():
        causes += _check_label_key(key, f"metadata.labels[{key}]")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    f"metadata.labels[{key}]",
                    f"Invalid value: {_quote(value)}: not a valid label value",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        return [
            *causes,
            ("metadata.annotations", "Invalid value: must be a map of string to string"),
        ]
    for key, value in annotations.items():
        causes += _check_label_key(key, f"metadata.annotations[{key}]")
        if not isinstance(value, str):
            causes.append((f"metadata.annotations[{key}]", "Invalid value: must be a string"))
    finalizers = meta.get("finalizers") or []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        causes.append(("metadata.finalizers", "Invalid value: must be a list of strings"))
    return causes


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def prune(value: Any, schema: Mapping[str, Any], root: bool = False) -> Any:
    """Drop fields the schema does not declare (unless it preserves unknown fields)."""
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
            return value
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, sub in value.items():
            if root and key in ("apiVersion", "kind", "metadata"):
                out[key] = sub
            elif key in props:
                if sub is None and not props[key].get("nullable"):
                    continue  # Kubernetes prunes a null of a field that is not nullable
                out[key] = prune(sub, props[key])
            elif isinstance(extra, Mapping):
                out[key] = prune(sub, extra)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = sub
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [prune(item, schema["items"]) for item in value]
    return value


def check_schema(value: Any, schema: Mapping[str, Any], path: str = "") -> list[Cause]:
    """Validate ``value`` against an OpenAPI v3 (structural) schema; every failure is a cause."""
    where = path or "<root>"
    if value is None:
        return (
            [] if schema.get("nullable") else [(where, 'Invalid value: "null": must not be null')]
        )
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _TYPES["integer"](value)):
            return [(where, f"Invalid value: {_quote(value)}: must be an integer or a string")]
    elif kind in _TYPES and not _TYPES[kind](value):
        return [(where, f"Invalid value: {_quote(value)}: {where} in body must be of type {kind}")]
    causes: list[Cause] = []
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_quote(v) for v in schema["enum"])
        causes.append((where, f"Unsupported value: {_quote(value)}: supported values: {allowed}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append((where, f"Invalid value: {value}: must be >= {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            causes.append((where, f"Invalid value: {value}: must be <= {schema['maximum']}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append((where, f"Invalid value: {_quote(value)}: too short"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append((where, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                (where, f"Invalid value: {_quote(value)}: should match '{schema['pattern']}'")
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append((where, f"Invalid value: must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                (where, f"Too many: {len(value)}: must have at most {schema['maxItems']} items")
            )
        items = schema.get("items")
        if isinstance(items, Mapping):
            for n, item in enumerate(value):
                causes += check_schema(item, items, f"{path}[{n}]")
    if isinstance(value, dict):
        prefix = f"{path}." if path else ""
        for name in schema.get("required") or []:
            if name not in value:
                causes.append((f"{prefix}{name}", "Required value"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if not path and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                causes += check_schema(sub, props[key], f"{prefix}{key}")
            elif isinstance(extra, Mapping):
                causes += check_schema(sub, extra, f"{prefix}{key}")
    return causes


def unknown_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Paths in ``value`` the schema does not declare (what pruning would drop)."""
    out: list[str] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
            return out
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if not path and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                out += unknown_fields(sub, props[key], where)
            elif isinstance(extra, Mapping):
                out += unknown_fields(sub, extra, where)
            elif not (extra is True or schema.get("x-kubernetes-preserve-unknown-fields")):
                out.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for n, item in enumerate(value):
            out += unknown_fields(item, schema["items"], f"{path}[{n}]")
    return out
