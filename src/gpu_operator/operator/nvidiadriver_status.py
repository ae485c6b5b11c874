"""Each NVIDIADriver CR's ``status`` as a pure function of what it rendered and what the cluster
reports: ``state`` ready/notReady (``disabled`` while the ClusterPolicy does not use the CRD),
upstream's ``Ready`` and ``Error`` conditions with upstream's reasons where it has one
(``Reconciled``, ``ReconcileFailed``, ``ConflictingNodeSelector``) and ours where it names the
cause better (``DriverNotReady``: which DaemonSet, node, pod and image), the message naming
what blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
