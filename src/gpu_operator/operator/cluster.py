"""What the operator reads from Node objects (reference §3.1, §3.4, §3.6): which nodes are GPU
nodes, whether NFD runs, each GPU node's OS and kernel, and the container runtime — one
immutable ``ClusterFacts`` built from plain node dicts, so every decision is a pure function."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.driver.images import NodeOs
from gpu_operator.names import GPU_PRESENT_LABEL
from gpu_operator.nfd import KERNEL_LABEL, NFD_PREFIX, OS_ID_LABEL, OS_VERSION_LABEL

GPU_PRESENT = GPU_PRESENT_LABEL


@dataclass(frozen=True)
class NodeFacts:
    """One node, reduced to what the operator decides on."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    runtime_version: str = ""

    @property
    def os(self) -> NodeOs | None:
        os_id, version = self.labels.get(OS_ID_LABEL), self.labels.get(OS_VERSION_LABEL)
        return NodeOs(os_id, version) if os_id and version else None

    @property
    def kernel(self) -> str | None:
        return self.labels.get(KERNEL_LABEL)

    @property
    def gpu_present(self) -> bool:
        return self.labels.get(GPU_PRESENT) == "true"


def node_facts(node: Mapping[str, Any]) -> NodeFacts:
    """A Node object (dict, as the API returns it) → ``NodeFacts``."""
    meta = node.get("metadata") or {}
    info = ((node.get("status") or {}).get("nodeInfo")) or {}
    return NodeFacts(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        runtime_version=str(info.get("containerRuntimeVersion", "")),
    )


def detect_runtime(nodes: Iterable[NodeFacts]) -> str:
    """containerd if any GPU node runs it (also the fallback), else cri-o, else docker (§3.6)."""
    seen = set()
    for node in nodes:
        for prefix, runtime in (
            ("containerd", "containerd"),
            ("cri-o", "crio"),
            ("docker", "docker"),
        ):
            if node.runtime_version.startswith(prefix):
                seen.add(runtime)
    for runtime in ("containerd", "crio", "docker"):
        if runtime in seen:
            return runtime
    return "containerd"


@dataclass(frozen=True)
class ClusterFacts:
    """The cluster as the renderers see it: GPU nodes (``gpu.present=true``), sorted by name."""

    gpu_nodes: tuple[NodeFacts, ...] = ()
    has_nfd: bool = False
    runtime: str = "containerd"

    @classmethod
    def from_nodes(cls, nodes: Iterable[NodeFacts]) -> ClusterFacts:
        listed = sorted(nodes, key=lambda n: n.name)
        gpu = tuple(n for n in listed if n.gpu_present)
        has_nfd = any(k.startswith(NFD_PREFIX) for n in listed for k in n.labels)
        return cls(gpu_nodes=gpu, has_nfd=has_nfd, runtime=detect_runtime(gpu))

    @classmethod
    def from_objects(cls, nodes: Iterable[Mapping[str, Any]]) -> ClusterFacts:
        return cls.from_nodes(node_facts(n) for n in nodes)
