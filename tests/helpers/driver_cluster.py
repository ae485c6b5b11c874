"""A small GPU cluster builder on the emulator for the driver's contract tests: they play the
kubelet and the DaemonSet controller by writing Pod objects."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

NS = "gpu-operator"
DRIVER = "nvidia-driver-daemonset"


class Cluster:
    """Build and play a GPU cluster on the emulator."""

    def __init__(self, client: Client):
        self.client = client
        for ns in (NS, "default"):
            with contextlib.suppress(ApiError):
                self._create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.uids: dict[str, str] = {}
        for name, namespace in (("nvidia-operator-validator", NS), ("workloads", "default")):
            self.uids[name] = self._daemonset(name, namespace, "busybox")

    def _daemonset(self, name: str, namespace: str, image: str) -> str:
        created = self._create(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "updateStrategy": {"type": "OnDelete"},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "main", "image": image}]},
                    },
                },
            }
        )
        return str(created.metadata.uid)

    def _create(self, body: dict[str, Any]) -> Any:
        obj: Any = codecs.from_dict(body)
        return self.client.create(obj)

    def node(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        meta = {"name": name, "labels": dict(labels or {})}
        self._create({"apiVersion": "v1", "kind": "Node", "metadata": meta})

    def driver_daemonset(self, image: str = "nvcr.io/nvidia/driver:1-ubuntu22.04") -> None:
        self.uids[DRIVER] = self._daemonset(DRIVER, NS, image)

    def bump_driver(self, image: str) -> int:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
        ds = self.client.patch(DaemonSet, DRIVER, patch, namespace=NS, patch_type=PatchType.MERGE)
        return int(ds.metadata.generation or 0)  # type: ignore[union-attr]

    def generation(self) -> int:
        meta = self.client.get(DaemonSet, DRIVER, namespace=NS).metadata
        return int(meta.generation or 0) if meta else 0

    def pod(
        self,
        name: str,
        node: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        ready: bool = True,
        owner: Mapping[str, Any] | None = None,
        gpu: bool = False,
        empty_dir: bool = False,
    ) -> None:
        container: dict[str, Any] = {"name": "main", "image": "busybox"}
        if gpu:
            container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
        spec: dict[str, Any] = {"nodeName": node, "containers": [container]}
        if empty_dir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        # The emulator collects pods whose owner is gone, so every owner is a real object;
        # workloads point at one stand-in object (only the uid must exist).
        owner = owner or {"kind": "ReplicaSet", "name": "workloads"}
        uid = self.uids[str(owner["name"])]
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "uid": uid, "controller": True, **owner}
        ]
        status = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        self._create({**body, "status": status})

    def driver_pod(self, node: str, generation: int) -> None:
        self.pod(
            f"{DRIVER}-{node}-g{generation}",
            node,
            namespace=NS,
            labels={"app": DRIVER, "pod-template-generation": str(generation)},
            owner={"kind": "DaemonSet", "name": DRIVER},
        )

    def validator_pod(self, node: str, *, ready: bool = True) -> None:
        name = f"nvidia-operator-validator-{node}"
        with contextlib.suppress(ApiError):
            self.client.delete(Pod, name, namespace=NS)
        self.pod(
            name,
            node,
            namespace=NS,
            labels={"app": "nvidia-operator-validator"},
            ready=ready,
            owner={"kind": "DaemonSet", "name": "nvidia-operator-validator"},
        )

    def play_daemonset_controller(self) -> None:
        """A deleted driver pod comes back on the DaemonSet's newest template."""
        generation = self.generation()
        have = {
            p.spec.nodeName  # type: ignore[union-attr]
            for p in self.client.list(Pod, namespace=NS, labels={"app": DRIVER})
        }
        for node in self.client.list(Node):
            name = str(node.metadata.name)  # type: ignore[union-attr]
            if name not in have:
                self.driver_pod(name, generation)

    def labels(self, node: str) -> dict[str, str]:
        return dict(self.client.get(Node, node).metadata.labels or {})  # type: ignore[union-attr]

    def annotations(self, node: str) -> dict[str, str]:
        return dict(self.client.get(Node, node).metadata.annotations or {})  # type: ignore[union-attr]

    def unschedulable(self, node: str) -> bool:
        spec = self.client.get(Node, node).spec
        return bool(spec and spec.unschedulable)

    def pod_names(self, namespace: str = "default") -> list[str]:
        return sorted(str(p.metadata.name) for p in self.client.list(Pod, namespace=namespace))  # type: ignore[union-attr]
