"""The reconciler's pure decision core: from the ClusterPolicies, the nodes and the objects the
operator owns (as the watches last reported them), one ``Plan`` — node label patches, objects to
apply (only where the rendered hash differs), objects to delete (disabled states, stale pools),
status to write (only where it differs), events, and when to look again. Empty at steady state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.dra_refusals import ApiFacts, refusals
from gpu_operator.operator.labeling import NodePatch
from gpu_operator.operator.nvidiadriver import OWNER_LABEL, DriverCR, driver_crs
from gpu_operator.operator.nvidiadriver_status import cr_statuses
from gpu_operator.operator.policy_v1 import deprecations, parse_spec
from gpu_operator.operator.render import HASH_ANNOTATION
from gpu_operator.operator.render.common import PART_OF
from gpu_operator.operator.render.driver import CrDrivers
from gpu_operator.operator.status import (
    Obj,
    ObjKey,
    carry_transition_times,
    ignored_status,
    obj_key,
    policy_status,
    state_status,
)
from gpu_operator.operator.upstream_images import image_notes, note_event

REQUEUE_NOT_READY_S = 5.0
REQUEUE_NO_NFD_S = 45.0


@dataclass(frozen=True)
class Event:
    policy: str
    reason: str
    message: str
    type: str = "Normal"


@dataclass(frozen=True)
class Observed:
    """What the watches last reported, plus the operator's own settings."""

    policies: Sequence[Obj]
    nodes: Sequence[NodeFacts]
    owned: Mapping[ObjKey, Obj]
    namespace: str = "gpu-operator"
    environ: Mapping[str, str] = field(default_factory=dict)
    pod_problems: Mapping[str, Sequence[str]] = field(default_factory=dict)
    now: str = "1970-01-01T00:00:00Z"
    applied_hashes: Mapping[ObjKey, str] = field(default_factory=dict)
    """Hashes applied earlier for kinds no watch reports (ServiceMonitor)."""
    missing_kinds: Mapping[str, str] = field(default_factory=dict)
    """Kinds the last apply found unserved (the ServiceMonitor CRD not installed) → what to do."""
    nvidia_drivers: Sequence[Obj] = ()
    """The NVIDIADriver CRs (empty where the CRD is not installed)."""
    api: ApiFacts = field(default_factory=ApiFacts)
    """The API server's version and whether it serves DRA (``draDriver`` refusals)."""


@dataclass(frozen=True)
class Plan:
    node_patches: Mapping[str, NodePatch] = field(default_factory=dict)
    applies: Sequence[Obj] = ()
    deletes: Sequence[ObjKey] = ()
    statuses: Mapping[str, Obj] = field(default_factory=dict)
    events: Sequence[Event] = ()
    requeue_after_s: float | None = None
    active: str | None = None
    ready: bool | None = None
    gpu_nodes: int = 0
    has_nfd: bool = False
    failure: str | None = None
    driver_statuses: Mapping[str, Obj] = field(default_factory=dict)
    """NVIDIADriver CR → its new status (only those that differ)."""

    @property
    def writes(self) -> int:
        return (
            len(self.node_patches)
            + len(self.applies)
            + len(self.deletes)
            + len(self.statuses)
            + len(self.driver_statuses)
        )


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def active_policy(policies: Sequence[Obj]) -> Obj | None:
    """The singleton: the oldest ClusterPolicy, its name breaking ties."""
    ordered = sorted(
        policies,
        key=lambda p: (str(_meta(p).get("creationTimestamp") or ""), str(_meta(p).get("name"))),
    )
    return ordered[0] if ordered else None


def _same_status(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return dict(old or {}) == dict(new)


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = _meta(obj).get("ownerReferences") or []
    labels = _meta(obj).get("labels") or {}
    return labels.get(PART_OF) == "gpu-operator" and any(r.get("uid") == uid for r in refs)


def plan(observed: Observed) -> Plan:
    """One pass. Pure: same input, same plan."""
    policy = active_policy(observed.policies)
    if policy is None:
        crs = driver_crs(observed.nvidia_drivers)
        return Plan(driver_statuses=_cr_statuses(observed, crs, None, None))
    name = str(_meta(policy)["name"])
    uid = str(_meta(policy).get("uid") or "")
    generation = int(_meta(policy).get("generation") or 0)
    statuses: dict[str, Obj] = {}
    events: list[Event] = []
    for other in observed.policies:
        other_name = str(_meta(other)["name"])
        if other_name != name and not _same_status(
            other.get("status"), ignored_status(observed.namespace)
        ):
            statuses[other_name] = ignored_status(observed.namespace)
            events.append(
                Event(other_name, "Ignored", f"ClusterPolicy {name} is older and wins", "Warning")
            )
    try:
        spec = parse_spec(policy.get("spec"), source=f"clusterpolicy/{name}")
        desired = desired_state(
            spec,
            observed.nodes,
            namespace=observed.namespace,
            environ=observed.environ,
            policy_name=name,
            policy_uid=uid,
            nvidia_drivers=observed.nvidia_drivers,
        )
        refused = refusals(spec, desired.facts.gpu_nodes, observed.api)
        if refused:  # nothing applied: a DRA driver that can't work, or two GPU allocators
            raise ConfigError(f"clusterpolicy/{name}: {'; '.join(refused)}")
    except ConfigError as error:
        status = carry_transition_times(
            policy_status(
                [],
                namespace=observed.namespace,
                gpu_nodes=0,
                has_nfd=False,
                now=observed.now,
                generation=generation,
                failure=str(error),
            ),
            policy.get("status"),
        )
        if not _same_status(policy.get("status"), status):
            statuses[name] = status
            events.append(Event(name, "ReconcileFailed", str(error), "Warning"))
        return Plan(statuses=statuses, events=events, active=name, ready=False, failure=str(error))

    applies = []
    wanted: set[ObjKey] = set()
    for obj in desired.objects():
        key = obj_key(obj)
        wanted.add(key)
        want = obj["metadata"]["annotations"][HASH_ANNOTATION]
        have = observed.owned.get(key)
        have_hash = (
            ((_meta(have).get("annotations") or {}).get(HASH_ANNOTATION))
            if have
            else observed.applied_hashes.get(key)
        )
        if have_hash != want:
            applies.append(obj)
    # A CR that cannot render now (a bad image field) keeps the DaemonSets it has.
    kept = {cr.owner for cr in desired.crs if desired.drivers and cr.name in desired.drivers.errors}
    deletes = sorted(
        key
        for key, obj in observed.owned.items()
        if key not in wanted
        and _owned_by(obj, uid)
        and (_meta(obj).get("labels") or {}).get(OWNER_LABEL) not in kept
    )
    if not desired.facts.gpu_nodes:
        # No GPU nodes: the DaemonSet states are skipped, not disabled (upstream keeps them);
        # a node list that is briefly empty must not tear every operand down.
        deletes = []

    # Kinds no watch reports (ServiceMonitor) count as there once applied with this hash.
    seen = {
        **{
            key: {"metadata": {"annotations": {HASH_ANNOTATION: digest}}}
            for key, digest in observed.applied_hashes.items()
            if key[0] == "ServiceMonitor"
        },
        **observed.owned,
    }
    states = [
        state_status(s, seen, observed.pod_problems, observed.missing_kinds)
        for s in desired.states
        if s.enabled
    ]
    facts = desired.facts
    status = carry_transition_times(
        policy_status(
            states,
            namespace=observed.namespace,
            gpu_nodes=len(facts.gpu_nodes),
            has_nfd=facts.has_nfd,
            now=observed.now,
            generation=generation,
        ),
        policy.get("status"),
    )
    ready = status["state"] == "ready"
    if not _same_status(policy.get("status"), status):
        statuses[name] = status
        old_state = (policy.get("status") or {}).get("state")
        if old_state != status["state"]:
            message = status["conditions"][0]["message"]
            blocking = "; ".join(f"{s.name}: {s.message}" for s in states if not s.ready)
            events.append(
                Event(
                    name,
                    "Ready" if ready else "NotReady",
                    blocking or message,
                    "Normal" if ready else "Warning",
                )
            )
    requeue = None
    if not ready:
        requeue = REQUEUE_NOT_READY_S
    elif not facts.has_nfd:
        requeue = REQUEUE_NO_NFD_S
    driver_statuses = _cr_statuses(observed, desired.crs, desired.drivers, name)
    if any(s["state"] == "notReady" for s in driver_statuses.values()):
        requeue = REQUEUE_NOT_READY_S
    return Plan(
        node_patches=desired.node_patches,
        applies=applies,
        deletes=deletes,
        statuses=statuses,
        events=events,
        requeue_after_s=requeue,
        active=name,
        ready=ready,
        gpu_nodes=len(facts.gpu_nodes),
        has_nfd=facts.has_nfd,
        driver_statuses=driver_statuses,
    )


def _cr_statuses(
    observed: Observed, crs: Sequence[DriverCR], drivers: CrDrivers | None, policy: str | None
) -> dict[str, Obj]:
    return cr_statuses(
        crs,
        drivers,
        observed.owned,
        observed.pod_problems,
        namespace=observed.namespace,
        now=observed.now,
        policy=policy,
    )


def deprecation_events(policy: Obj) -> list[Event]:
    """One Warning per deprecated field the policy sets, and one Event per image note the chart
    left on it (``upstream_images.NOTES_ANNOTATION``): sent once per generation."""
    name = str(_meta(policy)["name"])
    notes = [
        Event(name, *note_event(line))  # e.g. operator.version=v1.9.0-ubi8: we are the operator
        for line in image_notes(policy)
    ]
    try:
        spec = parse_spec(policy.get("spec"), source="clusterpolicy")
    except ConfigError:
        return notes
    return (
        [
            Event(
                name,
                "DeprecatedField",
                f"spec.{field_} is deprecated: accepted and ignored",
                "Warning",
            )
            for field_ in deprecations(spec)
        ]
        + [
            Event(name, "AcceptedNotUsed", f"accepted, not used: {line}", "Warning")
            for line in spec.not_used
            if line.split(":", 1)[0].removeprefix("spec.") not in deprecations(spec)
        ]
        + notes
    )
