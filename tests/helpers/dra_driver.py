"""The DRA kubelet plugin's test world (``gpu-operator dra-driver``): a driver root laid out as
the driver container has it, ResourceClaims as the API returns them, and an in-process claim
source and slice store (for tests of the driver's core and sockets without an API server)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gpu_operator.errors import KubeError


def make_driver_root(root: Path, version: str) -> Path:
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
        (lib / f"{name}.so.{version}").write_bytes(b"not elf")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/nvidia-smi").write_bytes(b"")
    return root


def claim(
    results: Sequence[tuple[str, str, str, str]],
    *,
    name: str = "train",
    namespace: str = "ml",
    uid: str = "8e3c-4f00-aa11",
    reserved_for: Sequence[str] = (),
) -> dict[str, Any]:
    """A ResourceClaim with ``(request, driver, pool, device)`` results, reserved for the pods
    with the UIDs ``reserved_for``."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {"devices": {"requests": [{"name": "gpus"}]}},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": r, "driver": d, "pool": p, "device": dev}
                        for r, d, p, dev in results
                    ]
                }
            },
            "reservedFor": [{"resource": "pods", "name": "p", "uid": u} for u in reserved_for],
        },
    }


class Claims:
    """The API's ResourceClaims, in process (a ``prepare.ClaimSource``)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls = 0
        self.failing = False

    def add(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.objects[(meta["namespace"], meta["name"])] = body

    def __call__(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.calls += 1
        if self.failing:
            raise KubeError(f"get ResourceClaim {namespace}/{name}: connection refused")
        return self.objects.get((namespace, name))


class Slices:
    """The API's ResourceSlices, in process (a ``plugin.Publisher``): every write recorded."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def publish(self, desired: dict[str, Any]) -> bool:
        from gpu_operator.dra.slices import same_content

        with self.changed:
            name = desired["metadata"]["name"]
            if same_content(self.stored.get(name), desired):
                return False
            self.stored[name] = copy.deepcopy(desired)
            self.writes.append(copy.deepcopy(desired))
            self.changed.notify_all()
            return True

    def publish_pool(self, node: str, desired: list[dict[str, Any]]) -> bool:
        """As ``kubeapi.SlicePublisher.publish_pool``: the node's slices become ``desired``,
        all at one new generation, or nothing is written."""
        from gpu_operator.dra.slices import generation_of, pool_is_current, with_generation

        with self.changed:
            stored = {n: s for n, s in self.stored.items() if s["spec"]["nodeName"] == node}
            if pool_is_current(stored, desired):
                return False
            generation = max(
                [generation_of(d) for d in desired]
                + [generation_of(s) + 1 for s in stored.values()]
            )
            for body in desired:
                written = with_generation(body, generation)
                self.stored[written["metadata"]["name"]] = written
                self.writes.append(copy.deepcopy(written))
            for name in set(stored) - {d["metadata"]["name"] for d in desired}:
                del self.stored[name]
            self.changed.notify_all()
            return True

    def pool(self, node: str) -> list[dict[str, Any]]:
        """The node's stored slices, by name."""
        with self.changed:
            return [
                copy.deepcopy(s)
                for n, s in sorted(self.stored.items())
                if s["spec"]["nodeName"] == node
            ]

    def delete_node_slices(self, node: str) -> int:
        with self.changed:
            mine = [n for n, s in self.stored.items() if s["spec"]["nodeName"] == node]
            for name in mine:
                del self.stored[name]
            self.changed.notify_all()
            return len(mine)

    def wait_for(self, predicate: Callable[[Slices], bool], timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)
