"""Server-side apply: field ownership per manager (``managedFields``, FieldsV1), conflicts, merge.

A faithful subset of Kubernetes' structured-merge-diff: maps merge per key, the lists named in
``patching.MERGE_KEYS`` merge per item, ``finalizers`` is a set and every other list is atomic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from gpu_operator.sandbox.apiserver.patching import MERGED_SCALAR_LISTS, merge_key_for
from gpu_operator.sandbox.apiserver.status import ApiStatus

Path = tuple[str, ...]
_MISSING = object()
# Metadata the server owns; never part of any manager's field set.
_SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "generateName",
    }
)


def field_set(obj: Any, prefix: Path = (), field: str = "") -> set[Path]:
    """Every leaf path of ``obj`` in FieldsV1 element syntax (``f:`` ``k:`` ``v:`` and ``.``)."""
    out: set[Path] = set()
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            if not prefix and key in ("apiVersion", "kind"):
                continue
            if prefix == ("f:metadata",) and key in _SERVER_METADATA:
                continue
            out |= field_set(value, (*prefix, f"f:{key}"), key)
        if not out and prefix == ("f:metadata",):
            return set()
        return out or {prefix}
    if isinstance(obj, list) and obj:
        key = merge_key_for(field, obj)
        if key is not None and all(isinstance(i, dict) and key in i for i in obj):
            for item in obj:
                item_path = (*prefix, _item_element(key, item))
                out.add((*item_path, "."))
                out |= field_set(item, item_path, "")
            return out
        if field in MERGED_SCALAR_LISTS:
            return {(*prefix, "v:" + json.dumps(i, separators=(",", ":"))) for i in obj}
    return {prefix} if prefix else set()


def _item_element(key: str, item: dict[str, Any]) -> str:
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))


def value_at(obj: Any, path: Path) -> Any:
    for element in path:
        if element == ".":
            return obj
        kind, _, rest = element.partition(":")
        if kind == "f" and isinstance(obj, dict) and rest in obj:
            obj = obj[rest]
        elif kind == "k" and isinstance(obj, list):
            wanted = json.loads(rest)
            obj = next(
                (
                    i
                    for i in obj
                    if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())
                ),
                _MISSING,
            )
        elif kind == "v" and isinstance(obj, list):
            value = json.loads(rest)
            obj = value if value in obj else _MISSING
        else:
            return _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def remove_at(obj: Any, path: Path) -> None:
    """Delete the field at ``path`` in place (a ``.`` path deletes the whole list item)."""
    if path and path[-1] == ".":
        path = path[:-1]
    if not path:
        return
    parent = value_at(obj, path[:-1])
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        target = value_at(parent, (path[-1],))
        if target is not _MISSING:
            parent.remove(target)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return root


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for element, sub in tree.items():
        path = (*prefix, element)
        if isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


def path_text(path: Path) -> str:
    """``.spec.containers[name="c"].image`` as Kubernetes prints a field in a conflict."""
    text = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            text += "." + rest
        elif kind == "k":
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items())
            text += "]"
        elif kind == "v":
            text += f"[={rest}]"
    return text


def _entry_id(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""))


def _entries(managed: list[dict[str, Any]]) -> dict[tuple[str, str, str], set[Path]]:
    return {_entry_id(e): from_fields_v1(e.get("fieldsV1") or {}) for e in managed}


def _render(
    sets: dict[tuple[str, str, str], set[Path]],
    old: list[dict[str, Any]],
    touched: tuple[str, str, str] | None,
    api_version: str,
    now: str,
) -> list[dict[str, Any]]:
    times = {_entry_id(e): e.get("time", now) for e in old}
    out = []
    for (manager, operation, subresource), paths in sets.items():
        if not paths:
            continue
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": now
            if (manager, operation, subresource) == touched
            else times.get((manager, operation, subresource), now),
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    return out


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    subresource: str,
    api_version: str,
    now: str,
) -> list[dict[str, Any]]:
    """``managedFields`` after a non-apply write: ``manager`` takes the fields it changed."""
    managed = (old or {}).get("metadata", {}).get("managedFields") or []
    sets = _entries(managed)
    new_fields = field_set(new)
    old_fields = field_set(old) if old is not None else set()
    changed = {
        p
        for p in new_fields
        if old is None or p not in old_fields or value_at(old, p) != value_at(new, p)
    }
    removed = old_fields - new_fields
    me = (manager, "Update", subresource)
    for entry_id, paths in sets.items():
        paths -= removed
        if entry_id != me:
            paths -= changed
    if changed:
        sets[me] = sets.get(me, set()) | changed
    return _render(sets, managed, me if changed else None, api_version, now)


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    subresource: str,
    api_version: str,
    now: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge ``applied`` into ``live`` for ``manager``: the new object and its ``managedFields``.

    Raises a 409 listing every field another manager owns with a different value, unless
    ``force``, which takes those fields over.
    """
    from gpu_operator.sandbox.apiserver.patching import strategic_merge

    managed = (live or {}).get("metadata", {}).get("managedFields") or []
    sets = _entries(managed)
    me = (manager, "Apply", subresource)
    mine_before = sets.get(me, set())
    mine_now = field_set(applied)
    base = copy.deepcopy(live) if live is not None else {}
    conflicts: dict[str, list[Path]] = {}
    for entry_id, paths in sets.items():
        if entry_id == me:
            continue
        for path in paths & mine_now:
            if path[-1] != "." and value_at(applied, path) != value_at(base, path):
                conflicts.setdefault(entry_id[0], []).append(path)
    if conflicts and not force:
        raise _conflict_error(conflicts, api_version)
    for entry_id, paths in sets.items():
        if entry_id != me:
            paths -= {p for ps in conflicts.values() for p in ps}
    others = set().union(*(p for e, p in sets.items() if e != me)) if sets else set()
    for path in sorted(mine_before - mine_now - others, key=len, reverse=True):
        remove_at(base, path)
    body = {k: v for k, v in applied.items() if k != "metadata"}
    meta = {k: v for k, v in (applied.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    result = strategic_merge(base, {**body, "metadata": meta})
    sets[me] = mine_now
    return result, _render(sets, managed, me, api_version, now)


def _conflict_error(conflicts: dict[str, list[Path]], api_version: str) -> ApiStatus:
    count = sum(len(p) for p in conflicts.values())
    lines, causes = [], []
    for manager, paths in conflicts.items():
        texts = sorted(path_text(p) for p in paths)
        if len(texts) == 1:
            lines.append(f'conflict with "{manager}" using {api_version}: {texts[0]}')
        else:
            lines.append(
                f'conflicts with "{manager}" using {api_version}:\n'
                + "\n".join(f"- {t}" for t in texts)
            )
        causes += [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{manager}" using {api_version}',
                "field": t,
            }
            for t in texts
        ]
    plural = "conflict" if count == 1 else "conflicts"
    return ApiStatus(
        409,
        f"Apply failed with {count} {plural}: " + "\n".join(lines),
        details={"causes": causes},
    )
