"""The driver manager's shell: the driver pod's init container (``driver-manager
uninstall_driver``) carrying out ``driver.manager``'s decisions against the API
(``gpu_operator.kube``) and the host (files under the host root, a configurable unload command).

Every wait is bounded; on any failure the operand labels are restored (and a cordon we made is
undone) FIRST, then a Warning Event and the node annotation name the reason, and the run fails
(the init container retries, as upstream's crash loop, but never with the operands paused).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator import kube
from gpu_operator.driver import manager
from gpu_operator.driver.manager import HostFacts, ManagerSettings, Mode
from gpu_operator.driver.startup import stored_digest
from gpu_operator.driver.upgrade_model import DRAIN_SKIP_LABEL, pod_view
from gpu_operator.errors import GpuOperatorError
from gpu_operator.kube import KubeClient, delete_pod, get_node, patch_node_labels, post_event

log = logging.getLogger(__name__)
CORDONED_BY_US = "gpu-operator.nvidia.com/driver-manager-cordoned"


class DriverManagerError(GpuOperatorError):
    """The driver could not be made ready for a (re)install; the message names what blocks."""


@dataclass(frozen=True)
class HostPaths:
    """Where the host's facts are read (the container's mounts; tests point them at a tmpdir)."""

    host_root: Path = Path("/host")
    sys_module: Path = Path("/sys/module")
    state_file: Path = Path("/run/nvidia/nvidia-driver.state")

    def facts(self) -> HostFacts:
        smi = [self.host_root / p / "nvidia-smi" for p in ("usr/bin", "bin", "usr/local/bin")]
        try:
            state = self.state_file.read_text()
        except OSError:
            state = None
        return HostFacts(
            host_driver=any(p.exists() for p in smi),
            module_loaded=(self.sys_module / "nvidia" / "refcnt").exists(),
            stored_digest=stored_digest(state),
        )

    def loaded(self) -> dict[str, bool]:
        return {m: (self.sys_module / m / "refcnt").exists() for m in manager.MODULES}


def run_commands(commands: Sequence[Sequence[str]], timeout_s: float) -> tuple[bool, str]:
    """Run each command; the first failure's output is the reason."""
    for command in commands:
        try:
            done = subprocess.run(
                list(command), capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"{' '.join(command)}: {error}"
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()
            return False, f"{' '.join(command)}: exit {done.returncode}: {output}"
    return True, ""


@dataclass
class DriverManager:
    settings: ManagerSettings
    client: KubeClient
    paths: HostPaths = field(default_factory=HostPaths)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_s: float = 1.0

    # --- the API side ------------------------------------------------------------------

    def _node(self) -> Any:
        return get_node(self.client, self.settings.node_name)

    def _patch(self, changes: Mapping[str, str | None], field_name: str = "labels") -> None:
        if changes:
            desired = {k: v for k, v in changes.items() if v is not None}
            patch_node_labels(
                self.client,
                self.settings.node_name,
                desired,
                changes.__contains__,
                field=field_name,
            )

    def _pods(self, **kw: Any) -> list[dict[str, Any]]:
        return kube.pod_dicts(self.client, node=self.settings.node_name, **kw)

    def _operand_pods(self) -> list[str]:
        pods = self._pods(namespace=self.settings.namespace)
        apps = set(manager.OPERAND_APPS)
        return sorted(
            str(p["metadata"]["name"])
            for p in pods
            if (p["metadata"].get("labels") or {}).get("app") in apps
        )

    def _gpu_pods(self) -> list[tuple[str, str]]:
        views = [pod_view(p) for p in self._pods()]
        return [(v.namespace, v.name) for v in views if v.gpu and not v.finished]

    def _drain_pods(self) -> list[tuple[str, str]]:
        views = [pod_view(p) for p in self._pods()]
        return [
            (v.namespace, v.name)
            for v in views
            if not v.daemonset
            and not v.finished
            and v.labels.get(DRAIN_SKIP_LABEL) != "true"
            and v.namespace != self.settings.namespace
            and self.settings.drain_selector.matches(v.labels)
            and (self.settings.drain_empty_dir or not v.empty_dir)
            and (self.settings.drain_force or v.controlled)
        ]

    def _wait(self, what: str, remaining: Callable[[], Sequence[object]], limit_s: float) -> None:
        deadline = self.clock() + limit_s
        while True:
            left = remaining()
            if not left:
                return
            if self.clock() >= deadline:
                names = ", ".join(str(x) for x in left)
                raise DriverManagerError(
                    f"timed out after {limit_s:.0f}s waiting for {what}: {names}"
                )
            self.sleep(self.poll_s)

    # --- the runs ----------------------------------------------------------------------

    def check_pre_installed(self, host: HostFacts | None = None) -> bool:
        """Clear a stale ``pre-installed`` label (report it first); ``True`` when it was stale."""
        host = host or self.paths.facts()
        node = self._node()
        if not manager.stale_pre_installed(dict(node.metadata.labels or {}), host):
            return False
        reason = (
            f"{manager.DRIVER_LABEL}=pre-installed but the host has no NVIDIA driver "
            f"(no nvidia-smi under {self.paths.host_root}); set back to true so the driver "
            "DaemonSet installs one"
        )
        log.warning("%s: %s", self.settings.node_name, reason)
        post_event(self.client, node, manager.STALE_REASON, reason, type="Warning")
        self._patch({manager.FAILURE_ANNOTATION: reason}, "annotations")
        self._patch({manager.DRIVER_LABEL: "true"})
        return True

    def uninstall_driver(self) -> Mode:
        host = self.paths.facts()
        if self.check_pre_installed(host):
            return Mode.CLEAN
        mode = manager.decide(host, self.settings)
        log.info("%s: %s", self.settings.node_name, mode.value)
        if mode is Mode.PRE_INSTALLED:
            self._patch({manager.DRIVER_LABEL: manager.PRE_INSTALLED})
            return mode
        if mode is Mode.REINSTALL:
            try:
                self._reinstall()
            except GpuOperatorError as error:
                self._fail(str(error))
                raise DriverManagerError(str(error)) from error
        self._finish()
        return mode

    def _reinstall(self) -> None:
        settings = self.settings
        labels = dict(self._node().metadata.labels or {})
        self._patch(dict(manager.pause(labels)))
        self._wait(
            "operand pods to leave",
            self._operand_pods,
            settings.wait_limit(settings.operand_wait_s),
        )
        annotations = dict(self._node().metadata.annotations or {})
        controller = manager.upgrade_controller_owns_eviction(annotations)
        if settings.gpu_pod_eviction and not controller:
            for namespace, name in self._gpu_pods():
                delete_pod(self.client, name, namespace)
            self._wait(
                "GPU pods to leave", self._gpu_pods, settings.wait_limit(settings.drain_timeout_s)
            )
        ok, why = self._unload()
        if ok:
            return
        if not settings.auto_drain or controller:
            raise DriverManagerError(f"the driver is in use and cannot be unloaded: {why}")
        self._patch({CORDONED_BY_US: "true"}, "annotations")
        kube.set_unschedulable(self.client, settings.node_name, True)
        for namespace, name in self._drain_pods():
            kube.evict_pod(self.client, name, namespace)
        self._wait(
            "drained pods to leave", self._drain_pods, settings.wait_limit(settings.drain_timeout_s)
        )
        # The pods are gone from the API before their processes let go of the driver.
        deadline = self.clock() + settings.wait_limit(settings.unload_retry_s)
        while not (result := self._unload())[0] and self.clock() < deadline:
            self.sleep(self.poll_s)
        ok, why = result
        if not ok:
            raise DriverManagerError(f"the driver is still in use after draining: {why}")

    def _unload(self) -> tuple[bool, str]:
        limit = self.settings.wait_limit(60.0)
        if self.settings.unload_command:
            return run_commands([["sh", "-c", self.settings.unload_command]], limit)
        return run_commands(
            manager.unload_commands(self.paths.loaded(), str(self.paths.host_root)), limit
        )

    def _undo(self) -> None:
        node = self._node()
        self._patch(dict(manager.restore(dict(node.metadata.labels or {}))))
        if (node.metadata.annotations or {}).get(CORDONED_BY_US) == "true":
            kube.set_unschedulable(self.client, self.settings.node_name, False)
            self._patch({CORDONED_BY_US: None}, "annotations")

    def _finish(self) -> None:
        self._undo()
        self._patch({manager.FAILURE_ANNOTATION: None}, "annotations")

    def _fail(self, reason: str) -> None:
        """Restore first, then report."""
        self._undo()
        self._patch({manager.FAILURE_ANNOTATION: reason[:1000]}, "annotations")
        try:
            post_event(
                self.client, self._node(), manager.FAILED_REASON, reason[:1000], type="Warning"
            )
        except GpuOperatorError as error:
            log.warning("event not posted: %s", error)
