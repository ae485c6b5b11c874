"""Each NVIDIADriver CR's ``status`` as a pure function of what it rendered and what the cluster
reports: ``state`` ready/notReady (``disabled`` while the ClusterPolicy does not use the CRD),
upstream's ``Ready`` and ``Error`` conditions with upstream's reasons where it has one
(``Reconciled``, ``ReconcileFailed``, ``ConflictingNodeSelector``) and ours where it names the
cause better (``DriverNotReady``: which DaemonSet, node, pod and image), the message naming
what blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpu_operator.operator.nvidiadriver import DriverCR
from gpu_operator.operator.render.common import Rendered
from gpu_operator.operator.render.driver import CrDrivers
from gpu_operator.operator.render.states import StateResult
from gpu_operator.operator.status import (
    Obj,
    ObjKey,
    carry_transition_times,
    state_status,
)

CONFLICTING = "ConflictingNodeSelector"
NOT_READY = "DriverNotReady"


def _conditions(ok: bool, reason: str, message: str, now: str, generation: int) -> list[Obj]:
    """Upstream's pair: Ready (True/Reconciled, or False/Error) and Error (its opposite)."""
    if ok:
        ready = ("True", reason, message)
        error = ("False", "Ready", "")
    else:
        ready = ("False", "Error", message)
        error = ("True", reason, message)
    return [
        {
            "type": kind,
            "status": status,
            "reason": why,
            "message": text,
            "lastTransitionTime": now,
            "observedGeneration": generation,
        }
        for kind, (status, why, text) in (("Ready", ready), ("Error", error))
    ]


def cr_status(
    cr: DriverCR,
    drivers: CrDrivers | None,
    observed: Mapping[ObjKey, Obj],
    pod_problems: Mapping[str, Sequence[str]],
    *,
    namespace: str,
    now: str,
    policy: str | None,
) -> Obj:
    """One CR's whole status. ``drivers`` is ``None`` when the active ClusterPolicy does not
    set ``driver.useNvidiaDriverCRD`` (or has the driver off): the CR is ``disabled``."""
    if drivers is None:
        message = (
            f"ClusterPolicy {policy} does not set driver.useNvidiaDriverCRD (or disables the "
            "driver): NVIDIADriver CRs are not used"
            if policy
            else "no ClusterPolicy: NVIDIADriver CRs are not used"
        )
        state, ok, reason = "disabled", False, "ReconcileFailed"
    elif cr.name in drivers.errors:
        state, ok, reason, message = "notReady", False, "ReconcileFailed", drivers.errors[cr.name]
    elif cr.name in drivers.assignment.conflicts:
        conflicts = drivers.assignment.conflicts[cr.name]
        state, ok, reason = "notReady", False, CONFLICTING
        message = "; ".join(c.message for c in conflicts)
    else:
        mine = drivers.daemonsets.get(cr.name, ())
        result = state_status(StateResult(cr.name, True, Rendered(mine)), observed, pod_problems)
        if not mine:
            state, ok, reason, message = "ready", True, "Reconciled", "no GPU node selected"
        elif result.ready:
            nodes = len(drivers.assignment.nodes.get(cr.name, ()))
            state, ok, reason = "ready", True, "Reconciled"
            message = f"driver ready on {nodes} node(s)"
        else:
            state, ok, reason, message = "notReady", False, NOT_READY, result.message
    status = {
        "state": state,
        "namespace": namespace,
        "conditions": _conditions(ok, reason, message, now, cr.generation),
    }
    return carry_transition_times(status, cr.status)


def cr_statuses(
    crs: Sequence[DriverCR],
    drivers: CrDrivers | None,
    observed: Mapping[ObjKey, Obj],
    pod_problems: Mapping[str, Sequence[str]],
    *,
    namespace: str,
    now: str,
    policy: str | None,
) -> dict[str, Obj]:
    """The statuses that differ from what each CR has now (nothing at steady state)."""
    out: dict[str, Obj] = {}
    for cr in crs:
        status = cr_status(
            cr, drivers, observed, pod_problems, namespace=namespace, now=now, policy=policy
        )
        if dict(cr.status or {}) != status:
            out[cr.name] = status
    return out


def _condition(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for condition in (status or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def cr_events(before: Mapping[str, Any] | None, after: Obj) -> list[tuple[str, str, str]]:
    """The Events (type, reason, message) a CR's status change is worth, named by the status
    conditions' reasons: a Warning when the Error condition turns true or its reason changes —
    and, for a conflict or a failure to reconcile, when its message changes (which nodes, which
    field) — and a Normal ``Reconciled`` when the CR becomes ready (first, or again). Nothing
    at steady state (statuses are written only when they change, and a ``DriverNotReady``
    whose pod counts move on is not news)."""
    old, new = _condition(before, "Error"), _condition(after, "Error")
    if new is None:
        return []
    was_error = old is not None and old.get("status") == "True"
    reason, message = str(new.get("reason") or ""), str(new.get("message") or "")
    if new.get("status") == "True":
        repeated = was_error and old is not None and old.get("reason") == reason
        if repeated and (reason == NOT_READY or (old or {}).get("message") == message):
            return []
        return [("Warning", reason, message)]
    if was_error or not before:
        ready = _condition(after, "Ready") or {}
        return [("Normal", str(ready.get("reason") or "Reconciled"), str(ready.get("message")))]
    return []
