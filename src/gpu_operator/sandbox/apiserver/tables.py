"""``meta.k8s.io/v1`` Tables: what ``kubectl get`` asks for to print its columns."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

from gpu_operator.sandbox.apiserver.resources import PrinterColumn, ResourceType
from gpu_operator.sandbox.apiserver.storage import Obj
from gpu_operator.sandbox.dra.claims import state as claim_state

TABLE_ACCEPT = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_ACCEPT in accept.replace(" ", "")


def _parse(timestamp: str) -> float:
    whole = timestamp.split(".")[0].rstrip("Z")
    return float(calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")))


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: ``42s``, ``5m3s``, ``3h12m``, ``4d6h``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // (24 * 365), (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // (24 * 365)}y"


def age(timestamp: str | None, now: float) -> str:
    """Time since ``timestamp`` as kubectl prints it; ``<unknown>`` without one."""
    if not timestamp:
        return "<unknown>"
    return human_duration(now - _parse(timestamp))


def _json_path(obj: Any, path: str) -> Any:
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _terminated_reason(state: Obj, prefix: str = "") -> str:
    if state.get("reason"):
        return prefix + str(state["reason"])
    if state.get("signal"):
        return f"{prefix}Signal:{state['signal']}"
    return f"{prefix}ExitCode:{state.get('exitCode', 0)}"


def _init_reason(obj: Obj) -> str | None:
    """Where the init containers are (``Init:0/1``, ``Init:CrashLoopBackOff``), or ``None``
    once they are done."""
    total = len((obj.get("spec") or {}).get("initContainers") or [])
    for index, status in enumerate((obj.get("status") or {}).get("initContainerStatuses") or []):
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting") or {}
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if terminated is not None:
            return _terminated_reason(terminated, "Init:")
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}"
        return f"Init:{index}/{total}"
    return None


def _pod_cells(obj: Obj) -> list[Any]:
    """upstream's ``printPod``: READY, STATUS (a container's reason over the phase) and
    RESTARTS."""
    status = obj.get("status") or {}
    containers = (obj.get("spec") or {}).get("containers") or []
    statuses = status.get("containerStatuses") or []
    reason = status.get("reason") or status.get("phase", "")
    ready = restarts = 0
    init = _init_reason(obj)
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if init is not None and conditions.get("Initialized") != "True":
        reason = init
        restarts = sum(
            int(s.get("restartCount", 0)) for s in status.get("initContainerStatuses") or []
        )
    else:
        running = False
        for container in reversed(statuses):
            restarts += int(container.get("restartCount", 0))
            state = container.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated") is not None:
                reason = _terminated_reason(state["terminated"])
            elif container.get("ready") and state.get("running") is not None:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if conditions.get("Ready") == "True" else "NotReady"
    if obj["metadata"].get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return [f"{ready}/{len(containers)}", reason, restarts]


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
    # upstream's printResourceClaim: STATE is pending, allocated,reserved, deleted …
    "resource.k8s.io/resourceclaims": (
        [{"name": "State", "type": "string"}],
        lambda obj: [claim_state(obj)],
    ),
}


def _column(c: _COLUMN) -> _COLUMN:
    return {"format": "", "description": "", "priority": 0, **c}


def _first(*values: Any) -> Any:
    return next((v for v in values if v), None)


def _event_cells(obj: Obj, now: float) -> list[Any]:
    """upstream's ``printEvent``, for core/v1 and events.k8s.io/v1 field names alike."""
    regarding = obj.get("involvedObject") or obj.get("regarding") or {}
    source = obj.get("source") or obj.get("deprecatedSource") or {}
    series = obj.get("series")
    first_stamp = _first(obj.get("firstTimestamp"), obj.get("deprecatedFirstTimestamp"))
    first = age(_first(first_stamp, obj.get("eventTime")), now)
    last_stamp = _first(obj.get("lastTimestamp"), obj.get("deprecatedLastTimestamp"))
    last = age(last_stamp, now) if last_stamp else first
    count = obj.get("count") or obj.get("deprecatedCount") or 1
    if series:
        last = age(series.get("lastObservedTime"), now)
        count = series.get("count") or count
    kind = str(regarding.get("kind") or "").lower()
    target = f"{kind}/{regarding['name']}" if regarding.get("name") else kind
    component = _first(source.get("component"), obj.get("reportingController"), "") or ""
    host = _first(source.get("host"), obj.get("reportingInstance"), "") or ""
    origin = f"{component}, {host}" if component and host else component
    message = str(obj.get("message") or obj.get("note") or "").strip()
    return [
        *(last, obj.get("type", ""), obj.get("reason", ""), target),
        *(regarding.get("fieldPath", ""), origin, message, first, int(count)),
        obj["metadata"]["name"],
    ]


_EVENT_COLUMNS = [
    _column({"name": name, "type": "string", "priority": priority, **extra})
    for name, priority, extra in (
        ("Last Seen", 0, {}),
        ("Type", 0, {}),
        ("Reason", 0, {}),
        ("Object", 0, {}),
        ("Subobject", 1, {}),
        ("Source", 1, {}),
        ("Message", 0, {}),
        ("First Seen", 1, {}),
        ("Count", 1, {"type": "integer"}),
        ("Name", 1, {"format": "name"}),
    )
]
_OWN_LAYOUT: dict[str, tuple[list[_COLUMN], Callable[[Obj, float], list[Any]]]] = {
    "/events": (_EVENT_COLUMNS, _event_cells),
    "events.k8s.io/events": (_EVENT_COLUMNS, _event_cells),
}
"""Kinds whose columns upstream lays out without the usual Name … Age frame."""


def columns(rtype: ResourceType) -> list[_COLUMN]:
    own = _OWN_LAYOUT.get(rtype.key)
    if own:
        return own[0]
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


def _cells(rtype: ResourceType, obj: Obj, now: float) -> list[Any]:
    own = _OWN_LAYOUT.get(rtype.key)
    if own:
        return own[1](obj, now)
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
    return cells


def row(rtype: ResourceType, obj: Obj, include: str, now: float) -> dict[str, Any]:
    meta = obj["metadata"]
    out: dict[str, Any] = {"cells": _cells(rtype, obj, now)}
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
