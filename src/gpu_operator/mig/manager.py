"""The MIG manager node agent's shell: runs the pure label protocol (``mig.agent``) against the
Kubernetes API (``gpu_operator.kube``) and the GPUs (``mig.apply`` over the NVML facade).

One loop: events come from a watch on the own Node (a thread feeding a queue) and from a tick
every ``poll_s``; each action the core returns is done here, in order. The only module of
``gpu_operator.mig`` that imports the Kubernetes glue.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.kube import (
    KubeClient,
    apply_config_map,
    delete_pod,
    get_node,
    patch_node_labels,
    pods_on_node,
    post_event,
    watch_node,
)
from gpu_operator.mig import agent
from gpu_operator.mig.apply import GpuInUse, apply_config, gpu_users, refuse_if_in_use
from gpu_operator.mig.defaults import DEFAULT_CONFIG_SOURCE, default_config_text
from gpu_operator.mig.export import generate_spec
from gpu_operator.mig.observe import observe
from gpu_operator.mig.plan import plan
from gpu_operator.mig.spec_v1 import MigConfigEntry, dump_spec, load_spec
from gpu_operator.names import DEPLOY_LABEL_PREFIX
from gpu_operator.podresources import SOCKET as POD_RESOURCES_SOCKET
from gpu_operator.podresources import device_uuid, list_pod_devices
from gpu_operator.settings_engine import from_env, variable

log = logging.getLogger(__name__)

CLIENT_APPS = (
    "nvidia-device-plugin-daemonset",
    "gpu-feature-discovery",
    "nvidia-dcgm-exporter",
    "nvidia-dcgm",
)
VALIDATOR_APP = "nvidia-operator-validator"
CLIENT_LABEL = f"{DEPLOY_LABEL_PREFIX}client"


@dataclass(frozen=True)
class ManagerSettings:
    """The agent's settings; upstream's env var names where upstream has them."""

    node_name: str
    """``NODE_NAME`` (required)."""
    config_file: Path | None = None
    """``CONFIG_FILE``: the user's config; wins over ``DEFAULT_CONFIG_FILE``, then ours."""
    default_config_file: Path | None = None
    """``DEFAULT_CONFIG_FILE``."""
    namespace: str = "gpu-operator"
    """``DEFAULT_GPU_CLIENTS_NAMESPACE``: where the GPU clients' pods run."""
    protocol: agent.Settings = field(default_factory=agent.Settings)
    """``WITH_REBOOT``; ``MIG_MANAGER_POD_WAIT_S``; ``MIG_MANAGER_RETRY_BASE_S`` (seconds)."""
    poll_s: float = 1.0
    """How often pods are looked at while waiting, and retries become due (seconds)."""
    publish_config_map: bool = True
    """Publish the generated config as ConfigMap ``<node>-mig-config`` (as upstream)."""
    host_root: Path = Path("/host")
    """``HOST_ROOT_MOUNT``: where the host's root filesystem is mounted in the pod."""
    host_state_file: Path = Path("/etc/systemd/system/nvidia-mig-manager.service.d/override.conf")
    """``HOST_MIG_MANAGER_STATE_FILE`` (on the host): when it exists, the selected config is
    written to it so the host's mig-parted unit re-applies it after a reboot."""
    shutdown_host_clients: bool = False
    """``WITH_SHUTDOWN_HOST_GPU_CLIENTS``: stop the host's GPU client services around an apply."""
    gpu_clients_file: Path | None = None
    """``GPU_CLIENTS_FILE``: ``version: v1`` + ``systemd-services: [...]`` to stop."""
    host_kubelet_service: str = "kubelet.service"
    """``HOST_KUBELET_SYSTEMD_SERVICE``: also stopped for a mode change with host clients."""
    cdi_enabled: bool = False
    """``CDI_ENABLED``: after a change, rewrite the ``management.nvidia.com/gpu`` CDI spec."""
    cdi_dir: Path = Path("/var/run/cdi")
    """Where CDI specs are written (upstream mounts the host's ``/var/run/cdi`` there)."""
    driver_root: Path = Path("/run/nvidia/driver")
    """``DRIVER_ROOT_CTR_PATH`` (else ``NVIDIA_DRIVER_ROOT``): the driver files, as mounted here."""
    driver_root_host: Path = Path("/run/nvidia/driver")
    """``NVIDIA_DRIVER_ROOT``/``DRIVER_ROOT``: the same files as the host sees them (spec paths)."""
    dev_root: str = "/"
    """``NVIDIA_DEV_ROOT``: where the device nodes are on the host."""
    cdi_hook_path: str = "/usr/bin/nvidia-cdi-hook"
    """``NVIDIA_CDI_HOOK_PATH``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ManagerSettings:
        env = os.environ if env is None else env
        values = from_env(_VARIABLES, env)
        if not values.get("node_name"):
            raise ConfigError("NODE_NAME must be set to the name of this node")
        protocol = {
            k: values.pop(k) for k in ("with_reboot", "pod_wait_s", "retry_base_s") if k in values
        }
        return cls(**values, protocol=agent.Settings(**protocol))


_VARIABLES = {
    "node_name": variable("NODE_NAME"),
    "config_file": variable("CONFIG_FILE", parse=Path),
    "default_config_file": variable("DEFAULT_CONFIG_FILE", parse=Path),
    "namespace": variable("DEFAULT_GPU_CLIENTS_NAMESPACE", empty_is_unset=False),
    "with_reboot": variable("WITH_REBOOT", parse=bool),
    "pod_wait_s": variable("MIG_MANAGER_POD_WAIT_S", parse=float),
    "retry_base_s": variable("MIG_MANAGER_RETRY_BASE_S", parse=float),
    "host_root": variable("HOST_ROOT_MOUNT", parse=Path),
    "host_state_file": variable("HOST_MIG_MANAGER_STATE_FILE", parse=Path),
    "shutdown_host_clients": variable("WITH_SHUTDOWN_HOST_GPU_CLIENTS", parse=bool),
    "gpu_clients_file": variable("GPU_CLIENTS_FILE", parse=Path),
    "host_kubelet_service": variable("HOST_KUBELET_SYSTEMD_SERVICE", empty_is_unset=False),
    "cdi_enabled": variable("CDI_ENABLED", parse=bool),
    "driver_root": variable("DRIVER_ROOT_CTR_PATH", "NVIDIA_DRIVER_ROOT", parse=Path),
    "driver_root_host": variable("NVIDIA_DRIVER_ROOT", "DRIVER_ROOT", parse=Path),
    "dev_root": variable("NVIDIA_DEV_ROOT", empty_is_unset=False),
    "cdi_hook_path": variable("NVIDIA_CDI_HOOK_PATH", empty_is_unset=False),
}
"""Field → its variables (first set wins) and reader (``gpu_operator.settings_engine``)."""


def host_reboot() -> None:
    """What upstream does: reboot the host through its root filesystem."""
    subprocess.run(["chroot", "/host", "reboot"], check=False, timeout=60)


HostCommand = Callable[[list[str]], int]
"""Runs a command on the host (``chroot /host …``) and returns its exit status."""


def chroot_host(host_root: Path) -> HostCommand:
    def run(argv: list[str]) -> int:
        return subprocess.run(
            ["chroot", str(host_root), *argv], check=False, timeout=120
        ).returncode

    return run


def gpu_client_services(path: Path | None) -> list[str]:
    """The ``systemd-services`` of the GPU clients file (``default-gpu-clients``)."""
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {error}") from error
    services = data.get("systemd-services") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("version") != "v1" or not isinstance(services, list):
        raise ConfigError(f"{path}: expected version: v1 and a systemd-services list")
    return [str(s) for s in services]


@dataclass
class MigManager:
    """The agent: ``run(stop)`` until ``stop`` is set; every step is logged."""

    settings: ManagerSettings
    client: KubeClient
    hardware: HardwareSettings
    reboot: Callable[[], None] = host_reboot
    host_command: HostCommand | None = None
    """How host commands run; default ``chroot <HOST_ROOT_MOUNT>``."""
    clock: Callable[[], float] = time.time
    state: agent.State = field(default_factory=agent.State)
    _events: queue.Queue[Any] = field(default_factory=queue.Queue)

    # --- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        watcher = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watcher.start()
        if self.settings.publish_config_map:
            self._publish_config_map()
        while not stop.is_set():
            try:
                node = self._events.get(timeout=self.settings.poll_s)
            except queue.Empty:
                node = None
            if isinstance(node, BaseException):
                raise node
            if node is not None:
                self.feed(
                    agent.NodeSeen(
                        self.clock(),
                        dict(node.metadata.labels or {}),
                        dict(node.metadata.annotations or {}),
                    )
                )
            if self.state.phase is agent.Phase.WAITING_FOR_PODS:
                self.feed(agent.PodsLeft(self.clock(), self._client_pods()))
            elif self.state.waits_for_idle and self._gpus_idle(self.state.config):
                self.feed(agent.GpusIdle(self.clock()))
            else:
                self.feed(agent.Tick(self.clock()))

    def _watch(self, stop: threading.Event) -> None:
        try:
            for change in watch_node(self.client, self.settings.node_name):
                if stop.is_set():
                    return
                if change.type != "DELETED":
                    self._events.put(change.obj)
        except BaseException as error:  # surfaced in the main loop, never swallowed
            self._events.put(error)

    def feed(self, event: agent.Event) -> None:
        """One step of the core, then its actions in order (each may feed a result back)."""
        self.state, actions = agent.step(self.state, event, self.settings.protocol)
        for action in actions:
            log.info("%s: %s", self.settings.node_name, action)
            self._do(action)

    # --- actions -----------------------------------------------------------------------

    def _do(self, action: agent.Action) -> None:
        node = self.settings.node_name
        if isinstance(action, agent.SetLabels):
            self._patch("labels", action.labels)
        elif isinstance(action, agent.Check):
            self.feed(self._check(action.config))
        elif isinstance(action, agent.Apply):
            self.feed(self._apply(action.config))
        elif isinstance(action, agent.Reboot):
            self.reboot()
        elif isinstance(action, agent.DeleteValidatorPods):
            for pod in self._pods({"app": VALIDATOR_APP}):
                meta = pod.metadata
                if meta is not None and meta.name:
                    delete_pod(self.client, meta.name, meta.namespace or self.settings.namespace)
        elif isinstance(action, agent.ReportFailure):
            self._patch("annotations", {agent.FAILURE_ANNOTATION: action.reason})
            obj = get_node(self.client, node)
            message = f"MIG config {action.config!r} failed: {action.reason}"
            post_event(self.client, obj, "MigConfigFailed", message[:1000], type="Warning")
        elif isinstance(action, agent.ClearFailure):
            self._patch("annotations", {agent.FAILURE_ANNOTATION: None})
        # WaitForPods: the loop looks at the pods every poll_s; RetryAt: its ticks retry.

    def _patch(self, field_name: str, changes: Mapping[str, str | None]) -> None:
        desired = {k: v for k, v in changes.items() if v is not None}
        patch_node_labels(
            self.client,
            self.settings.node_name,
            desired,
            lambda key: key in changes,
            field=field_name,
        )

    def _pods(self, labels: Mapping[str, str]) -> list[Any]:
        return pods_on_node(
            self.client, self.settings.node_name, namespace=self.settings.namespace, labels=labels
        )

    def _client_pods(self) -> tuple[str, ...]:
        names: list[str] = []
        for app in CLIENT_APPS:
            names += [str(p.metadata.name) for p in self._pods({"app": app}) if p.metadata]
        # Third-party GPU clients opt in by selecting nodes on the gpu.deploy.client label,
        # so pausing that label drains them too (upstream waits for them as well).
        for pod in pods_on_node(self.client, self.settings.node_name):
            selector = (pod.spec.nodeSelector if pod.spec else None) or {}
            if CLIENT_LABEL in selector and pod.metadata and pod.metadata.name:
                names.append(f"{pod.metadata.namespace}/{pod.metadata.name}")
        return tuple(sorted(set(names)))

    # --- the host side -----------------------------------------------------------------

    def _host(self, argv: list[str]) -> int:
        run = self.host_command or chroot_host(self.settings.host_root)
        status = run(argv)
        log.info("host: %s -> %d", " ".join(argv), status)
        return status

    def _persist_selected_config(self, config: str) -> None:
        """Upstream's step 4: the host unit re-applies the selected config after a reboot."""
        state_file = self.settings.host_root / self.settings.host_state_file.relative_to("/")
        if not state_file.exists():
            return
        state_file.write_text(f'[Service]\nEnvironment="MIG_PARTED_SELECTED_CONFIG={config}"\n')
        self._host(["systemctl", "daemon-reload"])

    def _stop_host_clients(self, mode_change: bool, stopped: list[str]) -> None:
        """Stop the active host GPU clients (and the kubelet for a mode change), recording each
        in ``stopped`` as it goes, so they are started again whatever happens next."""
        if not self.settings.shutdown_host_clients:
            return
        services = gpu_client_services(self.settings.gpu_clients_file)
        if mode_change:
            services.append(self.settings.host_kubelet_service)
        for service in services:
            if self._host(["systemctl", "-q", "is-active", service]) == 0:
                if self._host(["systemctl", "stop", service]) != 0:
                    raise ConfigError(f"could not stop host service {service}")
                stopped.append(service)

    def _refresh_cdi(self, nvml: Nvml) -> None:
        """Upstream's step 11: the management CDI spec names every device node, and a MIG
        change adds or removes capability nodes, so it is written again after each change."""
        if not self.settings.cdi_enabled:
            return
        from gpu_operator.toolkit.cdi_generate import CdiOptions, management_spec, spec_file_name
        from gpu_operator.toolkit.driver_tree import discover
        from gpu_operator.toolkit.host_files import write_atomically

        settings = self.settings
        tree = discover(
            settings.driver_root, nvml.system().driver_version, host_root=settings.driver_root_host
        )
        options = CdiOptions(dev_root=settings.dev_root, hook_path=settings.cdi_hook_path)
        nodes = [f"/dev/nvidia{g.minor_number}" for g in nvml.gpus()]
        spec = management_spec(tree, nodes, options)
        path = settings.cdi_dir / spec_file_name(str(spec["kind"]))
        write_atomically(path, yaml.safe_dump(spec, sort_keys=False))
        log.info("wrote %s", path)

    def _start_host_clients(self, stopped: list[str]) -> None:
        for service in reversed(stopped):
            if self._host(["systemctl", "start", service]) != 0:
                log.warning("host service %s did not start again", service)

    # --- the GPU side ------------------------------------------------------------------

    def _entries(self, config: str) -> list[MigConfigEntry]:
        for path in (self.settings.config_file, self.settings.default_config_file):
            if path is not None:
                try:
                    text = path.read_text()
                except OSError as error:
                    raise ConfigError(f"{path}: {error.strerror or error}") from error
                return load_spec(text, str(path)).select(config, source=str(path))
        return load_spec(default_config_text(), DEFAULT_CONFIG_SOURCE).select(
            config, source=DEFAULT_CONFIG_SOURCE
        )

    def _check(self, config: str) -> agent.Checked:
        now = self.clock()
        try:
            entries = self._entries(config)
            with Nvml.open(self.hardware) as nvml:
                gpus = observe(nvml)
                the_plan = plan(entries, gpus)
                mode_applied = plan(entries, gpus, mode_only=True).empty
                in_use = ""
                if not the_plan.empty:
                    try:
                        refuse_if_in_use(nvml, the_plan, self._owners)
                    except GpuInUse as busy:
                        in_use = str(busy)
        except GpuOperatorError as error:
            return agent.Checked(now, valid=False, reason=str(error))
        return agent.Checked(
            now, valid=True, applied=the_plan.empty, mode_applied=mode_applied, in_use=in_use
        )

    def _gpus_idle(self, config: str) -> bool:
        """Whether the GPUs ``config`` would change run no compute process now."""
        try:
            entries = self._entries(config)
            with Nvml.open(self.hardware) as nvml:
                the_plan = plan(entries, observe(nvml))
                return not gpu_users(nvml, [c.index for c in the_plan.changes])
        except GpuOperatorError:
            return False

    def _apply(self, config: str) -> agent.Applied:
        stopped: list[str] = []
        try:
            entries = self._entries(config)
            self._persist_selected_config(config)
            with Nvml.open(self.hardware) as nvml:
                mode_change = not plan(entries, observe(nvml), mode_only=True).empty
                self._stop_host_clients(mode_change, stopped)
                try:
                    apply_config(nvml, entries, mode_only=True, owners=self._owners)
                except GpuInUse as error:
                    return agent.Applied(self.clock(), ok=False, reason=str(error), in_use=True)
                except GpuOperatorError as error:
                    return agent.Applied(
                        self.clock(), ok=False, reason=str(error), reboot_needed=True
                    )
                apply_config(
                    nvml, entries, progress=lambda s: log.info("%s", s), owners=self._owners
                )
                self._refresh_cdi(nvml)
        except GpuInUse as error:
            return agent.Applied(self.clock(), ok=False, reason=str(error), in_use=True)
        except GpuOperatorError as error:
            return agent.Applied(self.clock(), ok=False, reason=str(error))
        finally:
            self._start_host_clients(stopped)
        return agent.Applied(self.clock(), ok=True)

    def _owners(self, uuids: Iterable[str]) -> dict[str, str]:
        """Which pods hold these devices, from the kubelet's PodResources (through the host
        root); an unreachable kubelet names no pods, the PIDs still say what is in use."""
        socket = self.settings.host_root / POD_RESOURCES_SOCKET.lstrip("/")
        try:
            held = list_pod_devices(socket)
        except OSError as error:
            log.warning("cannot name the pods that hold the GPUs: %s", error)
            return {}
        wanted = set(uuids)
        return {
            uuid: f"pod {entry.namespace}/{entry.pod}"
            for entry in held
            for uuid in map(device_uuid, entry.device_ids)
            if uuid in wanted
        }

    def _publish_config_map(self) -> None:
        """The node's generated config as ConfigMap ``<node>-mig-config`` (key config.yaml)."""
        node = self.settings.node_name
        try:
            with Nvml.open(self.hardware) as nvml:
                text = dump_spec(generate_spec(observe(nvml)))
            apply_config_map(
                self.client,
                f"{node}-mig-config",
                self.settings.namespace,
                labels={
                    "app.kubernetes.io/component": "nvidia-mig-manager",
                    "nvidia.com/node-name": node,
                },
                data={"config.yaml": text},
            )
        except GpuOperatorError as error:
            log.warning("%s: could not publish the generated MIG config: %s", node, error)
