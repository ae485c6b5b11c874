"""NVIDIADriver CRs → which CR drives each GPU node. Pure and deterministic.

A CR selects the GPU nodes its ``nodeSelector`` (default ``nvidia.com/gpu.present=true``) and
the required terms of its ``nodeAffinity`` match; a ``default: true`` CR takes the GPU nodes
no other CR selects. No node gets two drivers: CRs claim nodes oldest first (creation time,
then name — the rule that picks the active ClusterPolicy), and a younger CR that selects a node
an older one holds does not get it; it is told so (``Conflict``: both CRs and the nodes). The
result is the node label ``driver.groups.OWNER_LABEL`` each GPU node should carry; every CR's
DaemonSets select on it, so the DaemonSet templates do not change when nodes come and go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.driver.groups import OWNER_LABEL, owner_value
from gpu_operator.errors import ConfigError
from gpu_operator.names import GPU_PRESENT_LABEL
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.nvidiadriver_v1alpha1 import (
    NodeSelectorRequirement,
    NodeSelectorTerm,
    NVIDIADriverSpec,
    parse_nvidiadriver_spec,
)

__all__ = ["OWNER_LABEL", "Assignment", "Conflict", "DriverCR", "assign", "driver_crs"]


@dataclass(frozen=True)
class DriverCR:
    """One NVIDIADriver object: its identity, the parsed spec, or why it could not be parsed."""

    name: str
    uid: str = ""
    generation: int = 0
    created: str = ""
    spec: NVIDIADriverSpec | None = None
    error: str | None = None
    status: Mapping[str, Any] | None = None

    @property
    def owner(self) -> str:
        return owner_value(self.name)


def driver_crs(objects: Iterable[Mapping[str, Any]]) -> tuple[DriverCR, ...]:
    """NVIDIADriver objects as the API returns them → ``DriverCR``s, oldest first."""
    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        spec, error = None, None
        try:
            spec = parse_nvidiadriver_spec(obj.get("spec"), source=f"NVIDIADriver {name}")
        except ConfigError as problem:
            error = str(problem)
        out.append(
            DriverCR(
                name=name,
                uid=str(meta.get("uid") or ""),
                generation=int(meta.get("generation") or 0),
                created=str(meta.get("creationTimestamp") or ""),
                spec=spec,
                error=error,
                status=obj.get("status"),
            )
        )
    return tuple(sorted(out, key=lambda cr: (cr.created, cr.name)))


def _requirement(req: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    values = req.values or []
    have = labels.get(req.key)
    if req.operator == "In":
        return have is not None and have in values
    if req.operator == "NotIn":
        return have is None or have not in values
    if req.operator == "Exists":
        return have is not None
    if req.operator == "DoesNotExist":
        return have is None
    if req.operator in ("Gt", "Lt") and have is not None and len(values) == 1:
        try:
            mine, theirs = int(have), int(values[0])
        except ValueError:
            return False
        return mine > theirs if req.operator == "Gt" else mine < theirs
    return False


def _term(term: NodeSelectorTerm, node: NodeFacts) -> bool:
    """A node selector term (its requirements ANDed); an empty term matches nothing."""
    if not term.matchExpressions and not term.matchFields:
        return False
    fields = {"metadata.name": node.name}
    return all(_requirement(r, node.labels) for r in term.matchExpressions or ()) and all(
        _requirement(r, fields) for r in term.matchFields or ()
    )


def selects(spec: NVIDIADriverSpec, node: NodeFacts) -> bool:
    """Whether a CR's ``nodeSelector`` and required ``nodeAffinity`` take ``node``."""
    selector = spec.nodeSelector or {GPU_PRESENT_LABEL: "true"}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    affinity = spec.nodeAffinity
    required = affinity.requiredDuringSchedulingIgnoredDuringExecution if affinity else None
    return required is None or any(_term(t, node) for t in required.nodeSelectorTerms)


@dataclass(frozen=True)
class Conflict:
    """CR ``loser`` selects ``nodes`` that the older CR ``winner`` drives."""

    loser: str
    winner: str
    nodes: tuple[str, ...]

    @property
    def message(self) -> str:
        listed = ", ".join(self.nodes)
        return (
            f"NVIDIADriver {self.loser} selects node(s) {listed} that NVIDIADriver "
            f"{self.winner} (older) already drives: no node gets two drivers, so {self.loser} "
            f"does not deploy there; make the nodeSelectors of {self.winner} and {self.loser} "
            "disjoint"
        )


@dataclass(frozen=True)
class Assignment:
    """owners: GPU node → the CR that drives it. nodes: CR → its nodes. conflicts: per CR."""

    owners: Mapping[str, str] = field(default_factory=dict)
    nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    conflicts: Mapping[str, tuple[Conflict, ...]] = field(default_factory=dict)


def assign(crs: Sequence[DriverCR], gpu_nodes: Iterable[NodeFacts]) -> Assignment:
    """Each GPU node to at most one CR: the oldest non-default CR that selects it, else the
    oldest default CR. A CR that cannot be parsed keeps the nodes it drives now (their owner
    label names it), so a bad edit never takes a driver off a node; it selects no others."""
    nodes = sorted(gpu_nodes, key=lambda n: n.name)
    owners: dict[str, str] = {}
    lost: dict[str, dict[str, list[str]]] = {}
    for cr in crs:
        if cr.spec is None:
            for node in nodes:
                if node.labels.get(OWNER_LABEL) == cr.owner:
                    owners.setdefault(node.name, cr.name)
    ordered = [cr for cr in crs if cr.spec is not None and not cr.spec.default] + [
        cr for cr in crs if cr.spec is not None and cr.spec.default
    ]
    for cr in ordered:
        assert cr.spec is not None
        for node in nodes:
            if not cr.spec.default and not selects(cr.spec, node):
                continue
            held = owners.get(node.name)
            if held is None:
                owners[node.name] = cr.name
            elif cr.spec.default and not _is_default(crs, held):
                continue  # the fallback takes only nodes no other CR selects
            else:
                lost.setdefault(cr.name, {}).setdefault(held, []).append(node.name)
    by_cr: dict[str, list[str]] = {}
    for node_name, cr_name in owners.items():
        by_cr.setdefault(cr_name, []).append(node_name)
    return Assignment(
        owners=owners,
        nodes={name: tuple(sorted(listed)) for name, listed in by_cr.items()},
        conflicts={
            loser: tuple(Conflict(loser, w, tuple(n)) for w, n in sorted(winners.items()))
            for loser, winners in lost.items()
        },
    )


def _is_default(crs: Sequence[DriverCR], name: str) -> bool:
    return any(cr.name == name and cr.spec is not None and cr.spec.default for cr in crs)


def owner_patch(labels: Mapping[str, str], owner: str | None) -> dict[str, str | None]:
    """The label change that makes a node's ``OWNER_LABEL`` ``owner`` (None: no owner)."""
    if labels.get(OWNER_LABEL) == owner:
        return {}
    return {OWNER_LABEL: owner}


def crs_by_owner(crs: Iterable[DriverCR]) -> dict[str, DriverCR]:
    return {cr.owner: cr for cr in crs}
