"""Structural defaulting of custom resources, as k8s.io/apiextensions-apiserver does it.

A ``default`` in a CRD's openAPIV3Schema fills a field that is absent (or a non-nullable null)
in an object that is present; a filled-in default is itself defaulted further down (a
``default: {}`` object gets its children's defaults). ``additionalProperties`` and ``items``
schemas default every value and item. The API server applies this after pruning and before
validation on every write, and when it reads an object from storage (not written back).
``check_defaults`` is the CRD-side rule: a default must be pruned and valid against its schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gpu_operator.sandbox.apiserver.validation import Cause, check_schema, unknown_fields

_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def has_defaults(schema: Any) -> bool:
    """Whether any ``default`` appears in ``schema`` (cheap test before defaulting objects)."""
    if isinstance(schema, Mapping):
        if "default" in schema:
            return True
        return any(has_defaults(v) for k, v in schema.items() if k != "enum")
    if isinstance(schema, list):
        return any(has_defaults(v) for v in schema)
    return False


def _absent(value: Mapping[str, Any], key: str, prop: Mapping[str, Any]) -> bool:
    return key not in value or (value[key] is None and not prop.get("nullable"))


def default(value: Any, schema: Mapping[str, Any], root: bool = False) -> Any:
    """``value`` with the schema's defaults filled in; the same object when nothing changes
    (copy on write: stored objects are shared and never mutated)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out: dict[str, Any] | None = None
        for key, prop in props.items():
            if "default" in prop and _absent(value, key, prop):
                out = out if out is not None else dict(value)
                out[key] = copy.deepcopy(prop["default"])
        current = out if out is not None else value
        for key, sub in current.items():
            if root and key in _ROOT_FIELDS:
                continue
            child = props.get(key)
            if child is None and isinstance(extra, Mapping):
                child = extra
                if sub is None and not extra.get("nullable") and "default" in extra:
                    sub = copy.deepcopy(extra["default"])
            if child is None:
                continue
            filled = default(sub, child)
            if filled is not current[key]:
                out = out if out is not None else dict(value)
                out[key] = filled
        return out if out is not None else value
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items = schema["items"]
        filled_items = [default(item, items) for item in value]
        if any(a is not b for a, b in zip(filled_items, value, strict=True)):
            return filled_items
    return value


def check_defaults(schema: Any, path: str) -> list[Cause]:
    """Each ``default`` in a CRD schema must validate against its schema and carry no field
    pruning would drop (``path`` names the schema node, as the CRD's field path)."""
    if not isinstance(schema, Mapping):
        return []
    causes: list[Cause] = []
    if "default" in schema:
        value = schema["default"]
        where = f"{path}.default"
        unknown = unknown_fields(value, schema, "") if isinstance(value, dict | list) else []
        if unknown:
            causes.append((where, f"Invalid value: must not have unknown fields: {unknown}"))
        for field, problem in check_schema(default(value, schema), schema):
            causes.append((where, f"Invalid value: {field}: {problem}"))
    for key, sub in (schema.get("properties") or {}).items():
        causes += check_defaults(sub, f"{path}.properties[{key}]")
    if isinstance(schema.get("items"), Mapping):
        causes += check_defaults(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), Mapping):
        causes += check_defaults(schema["additionalProperties"], f"{path}.additionalProperties")
    return causes
