"""``meta.k8s.io/v1`` Tables: what ``kubectl get`` asks for to print its columns."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

from gpu_operator.sandbox.apiserver.resources import PrinterColumn, ResourceType
from gpu_operator.sandbox.apiserver.storage import Obj

TABLE_ACCEPT = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_ACCEPT in accept.replace(" ", "")


def age(timestamp: str | None, now: float) -> str:
    """Human age like kubectl's: ``42s``, ``5m3s``, ``3h``, ``4d``."""
    if not timestamp:
        return "<unknown>"
    created = calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    seconds = max(0, int(now - created))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _json_path(obj: Any, path: str) -> Any:
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _pod_cells(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    containers = (obj.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    return [f"{ready}/{len(containers)}", status.get("phase", ""), restarts]


def _node_cells(obj: Obj) -> list[Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    state = "Ready" if ready == "True" else "NotReady" if ready else "Unknown"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = obj["metadata"].get("labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = ",".join(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix))) or "<none>"
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [state, roles, version]  # Version is printed after Age, as kubectl does


_COLUMN = dict[str, Any]
_EXTRA: dict[str, tuple[list[_COLUMN], Callable[[Obj], list[Any]]]] = {
    "/pods": (
        [
            {"name": "Ready", "type": "string"},
            {"name": "Status", "type": "string"},
            {"name": "Restarts", "type": "integer"},
        ],
        _pod_cells,
    ),
    "/nodes": (
        [
            {"name": "Status", "type": "string"},
            {"name": "Roles", "type": "string"},
            {"name": "Version", "type": "string"},
        ],
        _node_cells,
    ),
}


def _column(c: _COLUMN) -> _COLUMN:
    return {"format": "", "description": "", "priority": 0, **c}


def columns(rtype: ResourceType) -> list[_COLUMN]:
    out = [_column({"name": "Name", "type": "string", "format": "name"})]
    extra = _EXTRA.get(rtype.key)
    if extra:
        out += [_column(c) for c in extra[0]]
    out += [
        _column({"name": c.name, "type": c.type, "priority": c.priority})
        for c in rtype.printer_columns
        if c.json_path != ".metadata.creationTimestamp"
    ]
    age_column = _column({"name": "Age", "type": "string"})
    if rtype.key == "/nodes":
        out.insert(len(out) - 1, age_column)
    else:
        out.append(age_column)
    return out


def _printer_cell(obj: Obj, column: PrinterColumn) -> Any:
    value = _json_path(obj, column.json_path)
    return "" if value is None else value


def row(rtype: ResourceType, obj: Obj, include: str, now: float) -> dict[str, Any]:
    meta = obj["metadata"]
    cells: list[Any] = [meta["name"]]
    extra = _EXTRA.get(rtype.key)
    if extra:
        cells += extra[1](obj)
    cells += [
        _printer_cell(obj, c)
        for c in rtype.printer_columns
        if c.json_path != ".metadata.creationTimestamp"
    ]
    obj_age = age(meta.get("creationTimestamp"), now)
    if rtype.key == "/nodes":
        cells.insert(len(cells) - 1, obj_age)
    else:
        cells.append(obj_age)
    out: dict[str, Any] = {"cells": cells}
    if include == "Object":
        out["object"] = obj
    elif include != "None":
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
        }
    return out


def table(
    rtype: ResourceType, objs: list[Obj], include: str, resource_version: str, now: float
) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(rtype),
        "rows": [row(rtype, o, include, now) for o in objs],
    }
