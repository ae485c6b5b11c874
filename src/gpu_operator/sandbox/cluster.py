"""The whole simulated cluster in one object: the API server emulator, a control-plane node and
the GPU nodes (each with its root directory, simulated GPUs, kubelet stand-in and pod runner),
and one control loop that plays the DaemonSet/Deployment controllers, the scheduler, nfd-master
and the kubelets' node status. ``Sandbox.start()`` → ``install(values)`` → ``stop()``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox import chart, nfd
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
from gpu_operator.sandbox.controllers import (
    Snapshot,
    pods_by_node,
    reconcile_daemonset,
    schedule,
)
from gpu_operator.sandbox.deployments import reconcile_deployment, reconcile_replicaset
from gpu_operator.sandbox.kubelet import Kubelet
from gpu_operator.sandbox.network import Networks
from gpu_operator.sandbox.nodes import (
    CONTROL_PLANE,
    NodeSpec,
    node_object,
    prepare_root,
    visible_state_file,
)
from gpu_operator.sandbox.podaccess import SandboxPods
from gpu_operator.sandbox.pods import NodeContext, PodRunner
from gpu_operator.sandbox.podspec import ImageCatalogue, base_environment
from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.runtime import RuntimeStandIn
from gpu_operator.sandbox.timestamps import rfc3339

Obj = dict[str, Any]
LOOP_S = 0.2
UNIX_PATH_MAX = 107
LONGEST_SOCKET = "var/lib/kubelet/device-plugins/nvidia-mig-1g.12gb+me.sock"


@dataclass
class SimNode:
    name: str
    spec: NodeSpec | None
    root: Path
    kubelet: Kubelet | None
    runner: PodRunner
    runtime: RuntimeStandIn
    base_resources: dict[str, str] = field(default_factory=dict)


class Sandbox:
    def __init__(
        self,
        specs: Sequence[NodeSpec],
        base_dir: Path,
        *,
        catalogue: ImageCatalogue | None = None,
        driver_delay_s: float = 2.0,
        port: int = 0,
    ):
        self.specs = list(specs)
        self.base_dir = base_dir
        self.catalogue = catalogue or ImageCatalogue()
        self.driver_delay_s = driver_delay_s
        pods = SandboxPods(lambda: [node.runner for node in self.nodes.values()])
        self.server = ServerThread(
            ApiServer(port=port, graceful_pod_deletion=True, log_source=pods, exec_source=pods)
        )
        self.kubeconfig = base_dir / "kubeconfig"
        self.nodes: dict[str, SimNode] = {}
        self.networks = Networks()
        """Each node's loopback network, held against other sandboxes while this one runs."""
        self.rest: Rest | None = None
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._loop = threading.Thread(target=self._run, daemon=True, name="sandbox-control")
        self._config_maps: dict[tuple[str, str], dict[str, str]] = {}

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> Sandbox:
        longest = self.base_dir.resolve() / f"{self.specs[-1].name}/{LONGEST_SOCKET}"
        if len(str(longest)) > UNIX_PATH_MAX:
            raise ConfigError(
                f"sandbox directory {self.base_dir} is too deep: device plugin sockets under it "
                f"would pass the {UNIX_PATH_MAX}-byte unix socket path limit; use a shorter --dir"
            )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        self.server.server.write_kubeconfig(self.kubeconfig)
        self.rest = Rest(self.server.url)
        self.rest.apply("apiextensions.k8s.io/v1/customresourcedefinitions", nfd.NODE_FEATURE_CRD)
        self._add_node(CONTROL_PLANE, None)
        for spec in self.specs:
            self._add_node(spec.name, spec)
        self._loop.start()
        return self

    def _add_node(self, name: str, spec: NodeSpec | None) -> None:
        assert self.rest is not None
        root = self.base_dir / name
        prepare_root(root, spec)
        kubelet = None
        runtime = RuntimeStandIn(root)
        runtime.start()
        if spec is not None:
            kubelet = Kubelet(
                root / "var/lib/kubelet/device-plugins",
                root / "var/lib/kubelet/pod-resources",
                root / "var/lib/kubelet/plugins_registry",
            )
            kubelet.start()
        context = NodeContext(
            name=name,
            root=root,
            sim=spec.preset if spec else None,
            kubelet=kubelet,
            rest=self.rest,
            catalogue=self.catalogue,
            config_maps=self._config_map,
            base_env=base_environment(
                sim=visible_state_file(root, spec.preset) if spec else None,
                node_root=root,
                kubeconfig=self.kubeconfig,
            ),
            driver_delay_s=self.driver_delay_s,
            index=self.networks.claim() - 1,
        )
        node = node_object(name, spec, rfc3339())
        status = node.pop("status")
        self.rest.create("nodes", node)
        self.rest.patch("nodes", name, {"status": status}, subresource="status")
        self.nodes[name] = SimNode(
            name, spec, root, kubelet, PodRunner(context), runtime, dict(status["capacity"])
        )

    def install(self, values: Sequence[str] = (), namespace: str = "gpu-operator") -> list[str]:
        """Render the chart with the real ``helm`` and ``values``; apply it into ``namespace``
        (the operator's Deployment then runs as a pod on the control-plane node)."""
        assert self.rest is not None
        return chart.install(self.rest, chart.render(values, namespace), namespace)

    def stop(self) -> None:
        """Stop every pod's processes, the kubelets, the control loop and the API server."""
        self._stop.set()
        if self._loop.is_alive():
            self._loop.join(10)
        for node in self.nodes.values():
            node.runner.stop()
        for node in self.nodes.values():
            node.runtime.stop()
            if node.kubelet is not None:
                node.kubelet.stop()
        if self.rest is not None:
            self.rest.close()
        self.server.stop()
        self.networks.release()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the control loop -------------------------------------------------------------

    def _config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        assert self.rest is not None
        found = self.rest.get("configmaps", name, namespace)
        return None if found is None else dict(found.get("data") or {})

    def _run(self) -> None:
        assert self.rest is not None
        while not self._stop.wait(LOOP_S):
            try:
                self.step()
            except (ApiError, OSError) as error:
                self.errors.append(str(error))
                del self.errors[:-20]

    def step(self) -> None:
        """One pass of every controller over one snapshot."""
        assert self.rest is not None
        snapshot = Snapshot.read(self.rest)
        for ds in snapshot.daemonsets:
            reconcile_daemonset(self.rest, ds, snapshot)
        for deploy in snapshot.deployments:
            reconcile_deployment(self.rest, deploy, snapshot)
        for replicaset in snapshot.replicasets:
            reconcile_replicaset(self.rest, replicaset, snapshot)
        schedule(self.rest, snapshot)
        by_node = pods_by_node(snapshot)
        features = self.rest.list(nfd.NODE_FEATURES)
        for obj in snapshot.nodes:
            node = self.nodes.get(obj["metadata"]["name"])
            if node is None:
                continue
            node.runner.sync(by_node.get(node.name, []))
            if node.spec is not None:
                nfd.sync_node(self.rest, obj, features, node.root)
                self._sync_resources(node, obj)

    def _sync_resources(self, node: SimNode, obj: Obj) -> None:
        """What the kubelet's device manager reports: capacity and allocatable per resource."""
        assert self.rest is not None
        assert node.kubelet is not None
        capacity, allocatable = dict(node.base_resources), dict(node.base_resources)
        for resource in node.kubelet.resource_names():
            capacity[resource] = str(node.kubelet.capacity(resource))
            allocatable[resource] = str(node.kubelet.allocatable(resource))
        status = obj.get("status") or {}
        if status.get("capacity") == capacity and status.get("allocatable") == allocatable:
            return
        # A merge patch can't drop keys from a map by omission: name the ones that went away.
        gone = {k: None for k in status.get("capacity") or {} if k not in capacity}
        self.rest.patch(
            "nodes",
            node.name,
            {"status": {"capacity": {**gone, **capacity}, "allocatable": {**gone, **allocatable}}},
            subresource="status",
        )

    # --- waiting ----------------------------------------------------------------------

    def wait_until(
        self, predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval_s)
        return predicate()
