"""The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
patch with the merge keys of the Kubernetes lists our objects use.

Every function takes and returns plain JSON values and never mutates its inputs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gpu_operator.sandbox.apiserver.status import ApiStatus

# List fields merged by key, as the Kubernetes Go types declare with patchMergeKey. A list not named
# here (tolerations included: Kubernetes declares no merge key for them) is replaced whole.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "addresses": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# Scalar lists merged as sets (patchStrategy "merge" on a list of strings).
MERGED_SCALAR_LISTS = frozenset({"finalizers"})


def _ports_key(items: list[Any]) -> str:
    """Container ports merge on ``containerPort``, service ports on ``port``."""
    if any(isinstance(i, dict) and "containerPort" in i for i in items):
        return "containerPort"
    return "port"


def merge_key_for(field: str, *lists: list[Any]) -> str | None:
    if field == "ports":
        return _ports_key([i for items in lists for i in items])
    return MERGE_KEYS.get(field)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiStatus(422, f"json patch: path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise ApiStatus(422, f"json patch: path {path!r} does not exist")
    return doc


def _add(doc: Any, parts: list[str], value: Any, path: str) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise ApiStatus(422, f"json patch: index {last!r} of {path!r} is out of range")
        parent.insert(index, value)
    else:
        raise ApiStatus(422, f"json patch: parent of {path!r} is not an object or array")
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        raise ApiStatus(422, "json patch: cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ApiStatus(422, f"json patch: path {path!r} does not exist")


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 ``add remove replace move copy test``; a failed op is a 422 naming it."""
    if not isinstance(operations, list):
        raise ApiStatus(400, "json patch: the body must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiStatus(422, f"json patch: operation {number} needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ApiStatus(422, f"json patch: operation {number} ({kind}) needs 'value'")
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind == "replace":
            _walk(doc, parts, path)
            if parts:
                _remove(doc, parts, path)
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise ApiStatus(422, f"json patch: operation {number} ({kind}) needs 'from'")
            src_parts = _pointer(source)
            value = copy.deepcopy(_walk(doc, src_parts, source))
            if kind == "move":
                _remove(doc, src_parts, source)
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise ApiStatus(
                    422, f"json patch: test failed: {path} is not {json.dumps(op['value'])}"
                )
        else:
            raise ApiStatus(422, f"json patch: operation {number} has unknown op {kind!r}")
    return doc


def _merge_keyed_list(field: str, live: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = [copy.deepcopy(i) for i in live]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiStatus(422, f"strategic merge patch: every {field} item needs {key!r}")
        directive = item.get("$patch")
        index = next(
            (n for n, i in enumerate(result) if isinstance(i, dict) and i.get(key) == item[key]),
            None,
        )
        if directive == "delete":
            if index is not None:
                result.pop(index)
        elif directive == "replace":
            clean = {k: v for k, v in item.items() if k != "$patch"}
            if index is None:
                result.append(clean)
            else:
                result[index] = clean
        elif index is None:
            result.append(strategic_merge(None, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch: a merge patch whose keyed lists merge item by item.

    Understands ``$patch: delete|replace`` on maps and list items, ``$deleteFromPrimitiveList/``
    and drops ``$setElementOrder/`` and ``$retainKeys`` (ordering and retain hints).
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [i for i in result.get(field) or [] if i not in (value or [])]
            continue
        live = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(live, list):
            merge_key = merge_key_for(key, live, value)
            if merge_key is not None:
                result[key] = _merge_keyed_list(key, live, value, merge_key)
            elif key in MERGED_SCALAR_LISTS:
                result[key] = live + [i for i in value if i not in live]
            else:
                result[key] = copy.deepcopy(value)
        elif isinstance(value, list):
            result[key] = [
                strategic_merge(None, i) if isinstance(i, dict) else copy.deepcopy(i)
                for i in value
                if not (isinstance(i, dict) and i.get("$patch") == "delete")
            ]
        else:
            merged = strategic_merge(live, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result
