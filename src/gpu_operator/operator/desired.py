"""The operator's whole desired state for one policy and a set of Node objects, as a pure
function shared by ``gpu-operator render``, ``gpu-operator images`` and the reconciler: node
label patches first (§3.2), then every state rendered against the nodes as they will be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.operator.cluster import ClusterFacts, NodeFacts, node_facts
from gpu_operator.operator.labeling import NodePatch, apply_patch, plan_node
from gpu_operator.operator.nvidiadriver import DriverCR, assign, driver_crs, owner_patch
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled
from gpu_operator.operator.render import RenderContext, StateResult, render_all
from gpu_operator.operator.render.driver import CrDrivers
from gpu_operator.operator.render.driver import nvidia_drivers as render_drivers


@dataclass(frozen=True)
class Desired:
    """What one pass wants: per-node patches, the facts it rendered from, every state's result."""

    node_patches: Mapping[str, NodePatch]
    facts: ClusterFacts
    states: tuple[StateResult, ...]
    drivers: CrDrivers | None = None
    """With ``driver.useNvidiaDriverCRD``: what each NVIDIADriver CR rendered (its status)."""
    crs: tuple[DriverCR, ...] = ()

    def objects(self) -> list[dict[str, Any]]:
        return [obj for state in self.states for obj in state.rendered.objects]


def desired_state(
    spec: ClusterPolicySpec,
    nodes: Iterable[NodeFacts],
    *,
    namespace: str = "gpu-operator",
    environ: Mapping[str, str] | None = None,
    policy_name: str = "cluster-policy",
    policy_uid: str | None = None,
    nvidia_drivers: Iterable[Mapping[str, Any]] = (),
) -> Desired:
    """``nvidia_drivers``: the NVIDIADriver objects; with ``driver.useNvidiaDriverCRD`` each GPU
    node is labelled with the CR that drives it (``nvidiadriver.OWNER_LABEL``), else the label
    is removed wherever it is."""
    plans: dict[str, NodePatch] = {}
    labelled: list[NodeFacts] = []
    for node in nodes:
        patch = plan_node(node.labels, node.annotations, spec)
        if patch:
            plans[node.name] = patch
            node = _patched(node, patch)
        labelled.append(node)
    crs = driver_crs(nvidia_drivers)
    per_cr = bool(spec.driver.useNvidiaDriverCRD) and enabled(spec, "driver")
    gpu = [n for n in labelled if n.gpu_present]
    owners = assign(crs, gpu).owners if per_cr else {}
    by_name = {cr.name: cr for cr in crs}
    for i, node in enumerate(labelled):
        owner = owners.get(node.name)
        change = owner_patch(node.labels, by_name[owner].owner if owner else None)
        if change:
            before = plans.get(node.name, NodePatch())
            patch = NodePatch({**before.labels, **change}, dict(before.annotations))
            plans[node.name] = patch
            labelled[i] = _patched(node, NodePatch(change))
    facts = ClusterFacts.from_nodes(labelled)
    ctx = RenderContext(
        spec=spec,
        namespace=namespace,
        facts=facts,
        environ=dict(environ or {}),
        policy_name=policy_name,
        policy_uid=policy_uid,
        nvidia_drivers=crs,
    )
    return Desired(
        node_patches=plans,
        facts=facts,
        states=tuple(render_all(ctx)),
        drivers=render_drivers(ctx) if per_cr else None,
        crs=crs,
    )


def _patched(node: NodeFacts, patch: NodePatch) -> NodeFacts:
    return NodeFacts(
        name=node.name,
        labels=apply_patch(node.labels, patch.labels),
        annotations=apply_patch(node.annotations, patch.annotations),
        runtime_version=node.runtime_version,
    )


def nodes_from_objects(objects: Iterable[Mapping[str, Any]]) -> list[NodeFacts]:
    return [node_facts(obj) for obj in objects]
