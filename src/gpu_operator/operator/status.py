"""ClusterPolicy status as a pure function of what was rendered and what the cluster reports:
DaemonSet readiness by upstream's rule, one condition per state naming what blocks it (beyond
upstream), upstream's ``Ready``/``Error`` conditions and reasons, kstatus' ``Reconciling`` (so
``helm install --wait`` returns when the operands are ready), and ``state``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gpu_operator.names import GPU_PRESENT_LABEL
from gpu_operator.operator.render import HASH_ANNOTATION, StateResult

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]  # kind, namespace, name


def obj_key(obj: Mapping[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def daemonset_blocker(ds: Mapping[str, Any]) -> str | None:
    """Why an observed DaemonSet is not ready (None: ready), by upstream's rule: nothing to
    schedule is ready; else no unavailable pods and updated == available == desired."""
    status = ds.get("status") or {}
    desired = int(status.get("desiredNumberScheduled") or 0)
    if desired == 0:
        return None
    unavailable = int(status.get("numberUnavailable") or 0)
    available = int(status.get("numberAvailable") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    generation = int((ds.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return f"rollout not observed yet (generation {generation}, observed {observed})"
    if unavailable or available < desired:
        return f"{available}/{desired} pods available"
    if updated < desired:
        return f"{updated}/{desired} pods updated"
    return None


@dataclass(frozen=True)
class StateStatus:
    name: str
    ready: bool
    reason: str
    message: str


def state_status(
    state: StateResult,
    observed: Mapping[ObjKey, Obj],
    pod_problems: Mapping[str, Sequence[str]],
    missing_kinds: Mapping[str, str] | None = None,
) -> StateStatus:
    """One enabled state's readiness and, when not ready, what blocks it. ``missing_kinds``:
    kinds the API server does not serve (a CRD not installed) → what to do about it."""
    if state.rendered.skipped:
        if state.rendered.skipped == "no GPU nodes":
            return StateStatus(state.name, True, "NoGPUNodes", "no GPU nodes: nothing to deploy")
        return StateStatus(state.name, False, "Unsupported", state.rendered.skipped)
    blockers = []
    for obj in state.rendered.objects:
        key = obj_key(obj)
        have = observed.get(key)
        name = key[2]
        if key[0] in (missing_kinds or {}):
            blockers.append(f"{key[0]} {name}: {(missing_kinds or {})[key[0]]}")
            continue
        if have is None:
            blockers.append(f"{name}: not created yet")
            continue
        want_hash = obj["metadata"]["annotations"][HASH_ANNOTATION]
        if ((have.get("metadata") or {}).get("annotations") or {}).get(
            HASH_ANNOTATION
        ) != want_hash:
            blockers.append(f"{name}: update pending")
            continue
        if key[0] == "DaemonSet":
            why = daemonset_blocker(have)
            if why:
                problems = list(pod_problems.get(name, ()))
                blockers.append(f"{name}: {why}" + (f"; {'; '.join(problems)}" if problems else ""))
    if blockers:
        return StateStatus(state.name, False, "NotReady", "; ".join(blockers))
    return StateStatus(state.name, True, "Ready", "")


def _condition(type_: str, ok: bool, reason: str, message: str, now: str, generation: int) -> Obj:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "observedGeneration": generation,
    }


def policy_status(
    states: Sequence[StateStatus],
    *,
    namespace: str,
    gpu_nodes: int,
    has_nfd: bool,
    now: str,
    generation: int,
    failure: str | None = None,
) -> Obj:
    """The whole ``status``: ``state``, ``namespace``, Ready/Error and one condition per state."""
    if failure is not None:
        conditions = [
            _condition("Ready", False, "Error", failure, now, generation),
            _condition("Error", True, "ReconcileFailed", failure, now, generation),
            _condition("Reconciling", True, "ReconcileFailed", failure, now, generation),
        ]
        return {"state": "notReady", "namespace": namespace, "conditions": conditions}
    waiting = [s.name for s in states if not s.ready]
    if waiting:
        message = f"ClusterPolicy is not ready; states not ready: [{' '.join(waiting)}]"
        conditions = [
            _condition("Ready", False, "Error", message, now, generation),
            _condition("Error", True, "OperandNotReady", message, now, generation),
        ]
    else:
        reason = "Reconciled" if gpu_nodes else ("NoGPUNodes" if has_nfd else "NFDLabelsMissing")
        message = (
            "ClusterPolicy is ready" if gpu_nodes else f"no GPU nodes ({GPU_PRESENT_LABEL}=true)"
        )
        conditions = [
            _condition("Ready", True, reason, message, now, generation),
            _condition("Error", False, "Ready", "", now, generation),
        ]
    # kstatus' convention (what `helm install --wait` and kubectl wait read on a custom
    # resource): True while the operands are still rolling out.
    conditions.append(
        _condition(
            "Reconciling",
            bool(waiting),
            "OperandsNotReady" if waiting else "Reconciled",
            conditions[0]["message"] if waiting else "",
            now,
            generation,
        )
    )
    for s in states:
        conditions.append(_condition(s.name, s.ready, s.reason, s.message, now, generation))
    return {
        "state": "notReady" if waiting else "ready",
        "namespace": namespace,
        "conditions": conditions,
    }


def carry_transition_times(new: Obj, old: Mapping[str, Any] | None) -> Obj:
    """Keep a condition's ``lastTransitionTime`` while its status is unchanged, so an unchanged
    status compares equal (and costs no write)."""
    before = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}
    for condition in new.get("conditions") or []:
        prior = before.get(condition["type"])
        if prior and prior.get("status") == condition["status"] and prior.get("lastTransitionTime"):
            condition["lastTransitionTime"] = prior["lastTransitionTime"]
    return new


def ignored_status(namespace: str) -> Obj:
    return {"state": "ignored", "namespace": namespace}
