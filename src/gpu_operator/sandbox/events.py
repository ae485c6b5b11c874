"""The Events a kubelet and the scheduler post about a pod (``kubectl describe pod``,
``kubectl get events``): Scheduled / FailedScheduling, Pulled, Created, Started, Failed and
BackOff for an image or a crashing container, Unhealthy for a failed probe, Killing. Posting
never fails the caller: a lost Event is a lost log line, not a broken pod."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Literal

from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.timestamps import rfc3339

Obj = dict[str, Any]


def post(
    rest: Rest,
    pod: Obj,
    reason: str,
    message: str,
    *,
    type: Literal["Normal", "Warning"] = "Normal",
    component: str = "kubelet",
    host: str = "",
) -> None:
    meta = pod["metadata"]
    stamp = rfc3339()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        # The kubelet's recorder names an Event <object>.<UnixNano in hex>: `kubectl get events`
        # (ordered by name) then reads in time order per object.
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component, **({"host": host} if host else {})},
        "reportingComponent": component,
        "reportingInstance": host,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    with contextlib.suppress(ApiError, OSError):
        rest.create("events", event, meta["namespace"])
