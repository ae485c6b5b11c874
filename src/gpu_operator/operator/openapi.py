"""Structural OpenAPI v3 schemas for the ClusterPolicy CRD: a pydantic model's JSON schema made
structural (refs inlined, ``Optional`` folded), upstream's typed fields laid over it from the
generated key table (``upstream_keys``), and the typed paths of a schema (``paths``) so a test
can compare ours with upstream's field by field."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]


def structural(node: Any, defs: Mapping[str, Any]) -> Any:
    """Inline ``$ref``s, fold ``Optional`` (anyOf with null) into the type, drop titles."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return structural({**options[0], **rest}, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "default" and value is None:
            continue
        if key == "additionalProperties" and value is False:
            continue  # not structural; the API server prunes unknown fields instead
        if key == "properties":
            out[key] = {name: structural(v, defs) for name, v in value.items()}
        else:
            out[key] = structural(value, defs)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out.pop("type", None)
    return out


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of ``model``: a fresh copy, the caller may change it."""
    result: Schema = json.loads(_model_schema_json(model))
    return result


@functools.cache
def _model_schema_json(model: type[BaseModel]) -> str:
    """Built once per model (pydantic's schema generation takes ~0.1 s for the ClusterPolicy)."""
    raw = model.model_json_schema(mode="validation")
    return json.dumps(structural(raw, raw.get("$defs", {})))


def type_of(node: Mapping[str, Any]) -> str:
    """A schema node's type in the table's words (``struct``, ``map<string>``, ``array<…>``)."""
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = node.get("type")
    if kind == "object":
        if node.get("properties"):
            return "struct"
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return f"map<{type_of(extra)}>"
        return "object"
    if kind == "array":
        return f"array<{type_of(node.get('items') or {})}>"
    return str(kind or "object")


def paths(node: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Every property path under ``node`` → its type (``[]`` marks list items)."""
    out: dict[str, str] = {}
    for name, child in (node.get("properties") or {}).items():
        here = f"{prefix}.{name}" if prefix else name
        out[here] = type_of(child)
        out.update(paths(child, here))
        if child.get("type") == "array" and isinstance(child.get("items"), dict):
            out.update(paths(child["items"], here + "[]"))
    return out


def node_for(kind: str) -> Schema:
    """A structural schema node for a table type (children of a struct are added separately)."""
    if kind == "int-or-string":
        return {"x-kubernetes-int-or-string": True}
    if kind == "struct":
        return {"type": "object", "properties": {}}
    if kind == "object":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    for outer, key in (("map", "additionalProperties"), ("array", "items")):
        if kind.startswith(outer + "<"):
            inner = node_for(kind[len(outer) + 1 : -1])
            return {"type": "object" if outer == "map" else "array", key: inner}
    return {"type": kind}


def _find(root: Schema, path: str) -> Schema | None:
    """The node at ``path`` (``a.b[].c``), or None where a step is missing."""
    node: Schema | None = root
    for step in path.split("."):
        if node is None:
            return None
        items = step.endswith("[]")
        name = step[:-2] if items else step
        node = (node.get("properties") or {}).get(name)
        if node is not None and items:
            node = node.get("items")
    return node


def overlay(root: Schema, table: Mapping[str, str]) -> Schema:
    """``root`` with every field of ``table`` present: missing ones added with the table's type,
    free-form objects and lists given the table's typed properties (they stay free-form too, so
    what the model accepts the CRD keeps). Existing typed fields are left as they are."""
    for path in sorted(table, key=lambda p: (p.count("."), p)):
        parent_path, _, name = path.rpartition(".")
        parent = _find(root, parent_path) if parent_path else root
        if parent is None:
            continue  # its parent is typed by the model in a way that has no such child
        if parent.get("type") == "array":
            parent = parent.setdefault("items", {"type": "object"})
        props = parent.setdefault("properties", {})
        if parent.get("type") is None and not parent.get("x-kubernetes-int-or-string"):
            parent["type"] = "object"
        kind = table[path]
        have = props.get(name)
        if have is None:
            props[name] = node_for(kind)
            continue
        if kind == "struct" and have.get("type") == "object":
            have.setdefault("properties", {})
        if kind.startswith("array<struct") and have.get("type") == "array":
            item = have.setdefault("items", {"type": "object"})
            item.setdefault("properties", {})
    return root
