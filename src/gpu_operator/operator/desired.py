"""The operator's whole desired state for one policy and a set of Node objects, as a pure
function shared by ``gpu-operator render``, ``gpu-operator images`` and the reconciler: node
label patches first (§3.2), then every state rendered against the nodes as they will be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.operator.cluster import ClusterFacts, NodeFacts, node_facts
from gpu_operator.operator.labeling import NodePatch, apply_patch, plan_node
from gpu_operator.operator.policy_v1 import ClusterPolicySpec
from gpu_operator.operator.render import RenderContext, StateResult, render_all


@dataclass(frozen=True)
class Desired:
    """What one pass wants: per-node patches, the facts it rendered from, every state's result."""

    node_patches: Mapping[str, NodePatch]
    facts: ClusterFacts
    states: tuple[StateResult, ...]

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
) -> Desired:
    patches: dict[str, NodePatch] = {}
    labelled: list[NodeFacts] = []
    for node in nodes:
        patch = plan_node(node.labels, node.annotations, spec)
        if patch:
            patches[node.name] = patch
            node = NodeFacts(
                name=node.name,
                labels=apply_patch(node.labels, patch.labels),
                annotations=apply_patch(node.annotations, patch.annotations),
                runtime_version=node.runtime_version,
            )
        labelled.append(node)
    facts = ClusterFacts.from_nodes(labelled)
    ctx = RenderContext(
        spec=spec,
        namespace=namespace,
        facts=facts,
        environ=dict(environ or {}),
        policy_name=policy_name,
        policy_uid=policy_uid,
    )
    return Desired(node_patches=patches, facts=facts, states=tuple(render_all(ctx)))


def nodes_from_objects(objects: Iterable[Mapping[str, Any]]) -> list[NodeFacts]:
    return [node_facts(obj) for obj in objects]
