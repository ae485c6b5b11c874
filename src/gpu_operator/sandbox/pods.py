"""A simulated kubelet's pod lifecycle: for each pod bound to its node, admit it (device plugin
``Allocate`` for extended resources), run the init containers in order, then the main
containers, restart them per ``restartPolicy`` with a (shortened) crash-loop backoff, and report
phase, conditions and container statuses to the API server — the part of a kubelet that isn't
the device manager (that is ``sandbox.kubelet``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpu_operator.errors import GpuOperatorError
from gpu_operator.sandbox import events
from gpu_operator.sandbox.containers import STOP_GRACE_S, Container
from gpu_operator.sandbox.kubelet import Kubelet
from gpu_operator.sandbox.kubelet.claims import prepare_pod_claims
from gpu_operator.sandbox.podspec import (
    ConfigMaps,
    ImageCatalogue,
    process_spec,
    volume_paths,
)
from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.timestamps import rfc3339

Obj = dict[str, Any]
TICK_S = 0.1
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.5, 5.0
ALLOCATION_ANNOTATION = "sandbox.gpu-operator.io/allocated-devices"
RESOURCE_CLAIMS = "resource.k8s.io/v1/resourceclaims"


@dataclass
class NodeContext:
    """What every pod worker of one node shares."""

    name: str
    root: Path
    sim: str | None
    kubelet: Kubelet | None
    rest: Rest
    catalogue: ImageCatalogue
    config_maps: ConfigMaps
    base_env: dict[str, str]
    driver_delay_s: float = 2.0
    index: int = 0
    """The node's number: pods get loopback addresses 127.<index + 1>.x.y."""
    pods_started: int = 0

    def next_pod_ip(self) -> str:
        self.pods_started += 1
        n = self.pods_started
        return f"127.{self.index + 1}.{(n >> 8) & 255}.{(n & 255) or 1}"


def extended_requests(container: Obj) -> dict[str, int]:
    resources = container.get("resources") or {}
    merged = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
    return {k: int(v) for k, v in merged.items() if "/" in k and not k.startswith("kubernetes.io")}


def _backoff(restarts: int) -> float:
    return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, restarts - 1)))


class PodWorker:
    def __init__(self, node: NodeContext, pod: Obj):
        self.node, self.pod = node, pod
        meta = pod["metadata"]
        self.name, self.namespace, self.uid = meta["name"], meta["namespace"], meta["uid"]
        self.policy = pod["spec"].get("restartPolicy", "Always")
        self.dir = node.root / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.init: list[Container] = []
        self.main: list[Container] = []
        self.phase = "Pending"
        self.reason = ""
        self.message = ""
        self.started = time.time()
        self.pod_ip = node.next_pod_ip()
        pod.setdefault("status", {})["podIP"] = self.pod_ip
        self._stop = threading.Event()
        self._pull_failed: set[str] = set()
        self.grace_s = STOP_GRACE_S
        """How long a stopping container gets between SIGTERM and SIGKILL."""
        self._last: str = ""
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"pod-{self.name}")

    # --- thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        self.grace_s = grace_s
        self._stop.set()
        self._thread.join(grace_s + 10)

    def _run(self) -> None:
        try:
            if self._admit():
                self._build()
                if self._run_init() and not self._stop.is_set():
                    self._run_main()
        except ApiError as error:
            if error.status != 404:  # a deleted pod just stops
                raise
        finally:
            for container in [*self.init, *self.main]:
                container.stop(self.grace_s)
            if self.node.kubelet is not None:
                self.node.kubelet.remove_pod(self.name, self.namespace)
                self.node.kubelet.unprepare_claims(self.uid)

    def _admit(self) -> bool:
        containers = self.pod["spec"].get("containers") or []
        wanted = [(c["name"], extended_requests(c)) for c in containers]
        self.allocations: dict[str, dict[str, str]] = {}
        self.device_ids: dict[str, tuple[str, ...]] = {}
        if self.pod["spec"].get("resourceClaims") and not self._prepare_claims():
            return False
        if not any(r for _, r in wanted):
            return True
        kubelet = self.node.kubelet
        try:
            if kubelet is None:
                raise GpuOperatorError("this node has no device manager")
            record = kubelet.admit_pod(self.name, wanted, namespace=self.namespace)
        except GpuOperatorError as error:
            self.phase, self.reason, self.message = "Failed", "UnexpectedAdmissionError", str(error)
            self._report()
            return False
        devices = {}
        for container in record.containers:
            env: dict[str, str] = {}
            for response in container.responses.values():
                env.update(dict(response.envs))
            self.allocations.setdefault(container.name, {}).update(env)
            devices[container.name] = container.devices
            self.device_ids[container.name] = (
                *self.device_ids.get(container.name, ()),
                *(d for ids in container.devices.values() for d in ids),
            )
        self.node.rest.patch(
            "pods",
            self.name,
            {"metadata": {"annotations": {ALLOCATION_ANNOTATION: json.dumps(devices)}}},
            self.namespace,
        )
        return True

    def _prepare_claims(self) -> bool:
        """DRA: the pod's claims prepared by their drivers before any container starts, retried
        (with a FailedPrepareDynamicResources Event per new reason) until they are."""
        said = ""
        while not self._stop.is_set():
            try:
                if self.node.kubelet is None:
                    raise GpuOperatorError("this node has no kubelet plugin registry")
                prepared = prepare_pod_claims(
                    self.node.kubelet,
                    self.pod,
                    lambda name: self.node.rest.get(RESOURCE_CLAIMS, name, self.namespace),
                    self.node.root,
                    self.node.base_env.get("GPU_OPERATOR_SIM"),
                )
            except GpuOperatorError as error:
                if str(error) != said:
                    said = str(error)
                    self._event("FailedPrepareDynamicResources", said, "Warning")
                self._stop.wait(1.0)
                continue
            for name, devices in prepared.items():
                self.allocations.setdefault(name, {}).update(devices.env)
                self.device_ids[name] = (*self.device_ids.get(name, ()), *devices.device_ids)
            return True
        return False

    def _build(self) -> None:
        volumes = volume_paths(self.pod, self.node.root, self.dir, self.node.config_maps)

        def make(container: Obj) -> Container:
            spec = process_spec(
                self.pod,
                container,
                node_root=self.node.root,
                pod_dir=self.dir,
                volumes=volumes,
                config_maps=self.node.config_maps,
                catalogue=self.node.catalogue,
                base_env=self.node.base_env,
            )
            spec.env.update(self.allocations.get(container["name"], {}))
            return Container(
                spec,
                self.dir,
                driver_delay_s=self.node.driver_delay_s,
                devices=self.device_ids.get(container["name"], ()),
                definition=container,
            )

        self.init = [make(c) for c in self.pod["spec"].get("initContainers") or []]
        self.main = [make(c) for c in self.pod["spec"].get("containers") or []]

    def _run_init(self) -> bool:
        for container in self.init:
            while not self._stop.is_set():
                if not self._start(container):
                    self._report()
                    self._stop.wait(2.0)
                    continue
                self._report()
                while container.poll() is None and not self._stop.wait(TICK_S):
                    pass
                if self._stop.is_set():
                    return False
                if container.exit_code == 0:
                    self._report()
                    break
                if self.policy == "Never":
                    self.phase, self.reason = "Failed", "InitContainerFailed"
                    self._report()
                    return False
                container.restarts += 1
                container.waiting_reason = "CrashLoopBackOff"
                self._event("BackOff", self._back_off(container), "Warning")
                self._report()
                self._stop.wait(_backoff(container.restarts))
        return not self._stop.is_set()

    def _run_main(self) -> None:
        pending_restart: dict[int, float] = {}
        for container in self.main:
            self._start(container)
        self.phase = "Running"
        self._report()
        while not self._stop.wait(TICK_S):
            now = time.time()
            for index, container in enumerate(self.main):
                if container.spec.behaviour == "missing":
                    continue
                self._probe(container, now)
                code = container.poll()
                if code is None or index in pending_restart:
                    continue
                if self.policy == "Always" or (self.policy == "OnFailure" and code != 0):
                    container.restarts += 1
                    container.waiting_reason = "CrashLoopBackOff"
                    self._event("BackOff", self._back_off(container), "Warning")
                    pending_restart[index] = now + _backoff(container.restarts)
            for index, due in list(pending_restart.items()):
                if now >= due:
                    del pending_restart[index]
                    self._start(self.main[index])
            if self.policy != "Always" and not pending_restart:
                codes = [c.exit_code for c in self.main if c.spec.behaviour == "run"]
                if codes and all(code is not None for code in codes):
                    self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
                    self._report()
                    return
            self._report()

    # --- events -------------------------------------------------------------------------

    def _event(
        self, reason: str, message: str, kind: Literal["Normal", "Warning"] = "Normal"
    ) -> None:
        events.post(self.node.rest, self.pod, reason, message, type=kind, host=self.node.name)

    def _back_off(self, container: Container) -> str:
        return f"Back-off restarting failed container {container.spec.name} in pod {self.name}"

    def _start(self, container: Container) -> bool:
        """Start a container, with the Events a kubelet posts (an image that can't be pulled:
        once per container)."""
        image, name = container.spec.image, container.spec.name
        if not container.start():
            if name not in self._pull_failed:
                self._pull_failed.add(name)
                self._event(
                    "Failed",
                    f'Failed to pull image "{image}": not in the sandbox\'s image catalogue',
                    "Warning",
                )
                self._event("BackOff", f'Back-off pulling image "{image}"')
            return False
        self._event("Pulled", f'Container image "{image}" already present on machine')
        self._event("Created", f"Created container {name}")
        self._event("Started", f"Started container {name}")
        return True

    def _probe(self, container: Container, now: float) -> None:
        for failure in container.probe(now, self.pod_ip):
            if failure.streak == 1 or failure.restart:
                self._event("Unhealthy", str(failure), "Warning")
            if failure.restart:
                self._event(
                    "Killing",
                    f"Container {container.spec.name} failed {failure.kind} probe, "
                    "will be restarted",
                )

    def announce_stop(self) -> None:
        for container in self.main:
            if container.running:
                self._event("Killing", f"Stopping container {container.spec.name}")

    # --- status -------------------------------------------------------------------------

    def status(self) -> Obj:
        init_done = all(c.exit_code == 0 for c in self.init)
        ready = self.phase == "Running" and all(c.ready for c in self.main)
        stamp = rfc3339(self.started)

        def condition(kind: str, value: bool) -> Obj:
            return {"type": kind, "status": str(value), "lastTransitionTime": stamp}

        status: Obj = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": stamp,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", init_done),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "initContainerStatuses": [c.status(init=True) for c in self.init],
            "containerStatuses": [c.status() for c in self.main],
        }
        if self.reason:
            status["reason"], status["message"] = self.reason, self.message
        return status

    def _report(self) -> None:
        status = self.status()
        text = json.dumps(status, sort_keys=True)
        if text == self._last:
            return
        self._last = text
        self.node.rest.patch(
            "pods", self.name, {"status": status}, self.namespace, subresource="status"
        )


class PodRunner:
    """The pods of one node: a worker per pod bound here, stopped when the pod goes away."""

    def __init__(self, node: NodeContext):
        self.node = node
        self.workers: dict[str, PodWorker] = {}
        self._terminating: set[str] = set()

    def _terminate(self, worker: PodWorker | None, pod: Obj) -> None:
        """A graceful deletion: stop the containers within the pod's grace period, then delete
        the pod for good (grace 0), as a kubelet does."""
        meta = pod["metadata"]
        try:
            if worker is not None:
                worker.announce_stop()
                worker.stop(float(meta.get("deletionGracePeriodSeconds") or 30))
            self.node.rest.delete("pods", meta["name"], meta["namespace"], grace_period_s=0)
        except (ApiError, OSError):
            pass  # the next sync sees the pod again if it is still there
        finally:
            self._terminating.discard(meta["uid"])

    def sync(self, pods: list[Obj]) -> None:
        current = {
            p["metadata"]["uid"]: p for p in pods if not p["metadata"].get("deletionTimestamp")
        }
        terminating = {
            p["metadata"]["uid"]: p for p in pods if p["metadata"].get("deletionTimestamp")
        }
        for uid in [u for u in self.workers if u not in current and u not in terminating]:
            self.workers.pop(uid).stop()  # removed without a grace period (force delete)
        for uid, pod in terminating.items():
            if uid not in self._terminating:
                self._terminating.add(uid)
                worker = self.workers.pop(uid, None)
                threading.Thread(
                    target=self._terminate, args=(worker, pod), daemon=True, name=f"term-{uid[:8]}"
                ).start()
        for uid, pod in current.items():
            if uid not in self.workers and pod.get("status", {}).get("phase") in (None, "Pending"):
                worker = PodWorker(self.node, pod)
                self.workers[uid] = worker
                worker.start()

    def stop(self, on_each: Callable[[PodWorker], None] = lambda w: None) -> None:
        workers = list(self.workers.values())
        self.workers.clear()
        for worker in workers:
            worker._stop.set()
        for worker in workers:
            on_each(worker)
            worker.stop()
