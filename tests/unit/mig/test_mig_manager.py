"""The MIG manager node agent against the API server emulator over real HTTP and a simulated
node: success, already applied (no label flips), unknown config (labels untouched), pods that
never leave (timeout, labels restored, failed, retried), an agent restarted mid-apply."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, Node, Pod

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.mig import agent
from gpu_operator.mig.manager import ManagerSettings, MigManager

pytestmark = pytest.mark.timeout(30)

NODE = "gpu-node-1"
NS = "gpu-operator"
PLUGIN, GFD, DCGM_EXPORTER = agent.DEPLOY_LABELS[:3]


@pytest.fixture
def client(client: Client) -> Client:
    """The shared emulator's client (tests/conftest.py), with the operator's namespace."""
    client.create(Namespace(metadata=ObjectMeta(name=NS)))
    return client


@pytest.fixture
def hardware(tmp_path: Path) -> HardwareSettings:
    return HardwareSettings(sim="h200", sim_root=tmp_path / "sim")


def make_node(client: Client, **labels: str) -> None:
    base = {PLUGIN: "true", GFD: "true", DCGM_EXPORTER: "false"}
    client.create(Node(metadata=ObjectMeta(name=NODE, labels={**base, **labels})))


def labels(client: Client) -> dict[str, str]:
    return dict(client.get(Node, NODE).metadata.labels or {})  # type: ignore[union-attr]


def failed(client: Client) -> bool:
    """The state label says ``failed`` and the reason is on the node: the agent writes them in
    two requests, so a test that reads the reason waits for both."""
    node = client.get(Node, NODE)
    return (node.metadata.labels or {}).get(agent.STATE_LABEL) == "failed" and (  # type: ignore[union-attr]
        agent.FAILURE_ANNOTATION in (node.metadata.annotations or {})  # type: ignore[union-attr]
    )


def set_config(client: Client, name: str) -> None:
    client.patch(Node, NODE, {"metadata": {"labels": {agent.CONFIG_LABEL: name}}})


class Running:
    """An agent in a thread, with every label value it ever wrote recorded by a watcher."""

    def __init__(self, client: Client, hardware: HardwareSettings, **protocol: float | bool):
        settings = ManagerSettings(
            node_name=NODE,
            namespace=NS,
            protocol=agent.Settings(**protocol),  # type: ignore[arg-type]
            poll_s=0.05,
        )
        self.manager = MigManager(settings, client, hardware, reboot=self._reboot)
        self.reboots = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _reboot(self) -> None:
        self.reboots += 1

    def _run(self) -> None:
        try:
            self.manager.run(self.stop)
        except BaseException as error:
            self.error = error

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert self.error is None, self.error


@contextlib.contextmanager
def running(manager: MigManager) -> Iterator[None]:
    """``manager.run`` in a thread for the duration of the block."""
    stop = threading.Event()
    thread = threading.Thread(target=manager.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def history(client: Client, key: str) -> Callable[[], list[str]]:
    """Every value the node's label ``key`` takes from now on (a watch in a thread)."""
    seen: list[str] = []
    other = Client(config=client.config, field_manager="watcher")  # type: ignore[attr-defined]

    def watch() -> None:
        try:
            for _, node in other.watch(Node, fields={"metadata.name": NODE}):
                value = (node.metadata.labels or {}).get(key, "")
                if not seen or seen[-1] != value:
                    seen.append(value)
        except Exception:  # the emulator stops at the end of the test: so does this watch
            return

    threading.Thread(target=watch, daemon=True).start()
    until(lambda: bool(seen))  # watching before the agent starts: no change can be missed
    return lambda: list(seen)


def test_the_agent_applies_a_labelled_config_and_restores_the_client_labels(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    plugin = history(client, PLUGIN)
    with Running(client, hardware):
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
    now = labels(client)
    assert (now[PLUGIN], now[GFD], now[DCGM_EXPORTER]) == ("true", "true", "false")
    until(lambda: plugin()[-1:] == ["true"])
    assert agent.PAUSED in plugin(), "the device plugin was paused during the change"
    with Nvml.open(hardware) as nvml:
        assert sorted(d.profile for d in nvml.mig_devices(0)) == [
            "1g.18gb",
            "1g.18gb",
            "2g.35gb",
            "3g.71gb",
        ]
    config_map = client.get(ConfigMap, f"{NODE}-mig-config", namespace=NS)
    assert "all-balanced" in (config_map.data or {})["config.yaml"]


def test_an_already_applied_config_flips_no_label(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(client, **{agent.CONFIG_LABEL: "all-disabled", agent.STATE_LABEL: "success"})
    plugin = history(client, PLUGIN)
    state = history(client, agent.STATE_LABEL)
    with Running(client, hardware):
        time.sleep(0.6)
    assert plugin() == ["true"]
    assert state() == ["success"]


def test_an_unknown_config_fails_with_an_event_and_leaves_the_clients_running(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(client, **{agent.CONFIG_LABEL: "all-9g.999gb"})
    plugin = history(client, PLUGIN)
    with Running(client, hardware):
        until(lambda: failed(client))
    assert plugin() == ["true"]
    node = client.get(Node, NODE)
    reason = (node.metadata.annotations or {})[agent.FAILURE_ANNOTATION]  # type: ignore[union-attr]
    assert "no config named 'all-9g.999gb'" in reason
    events = list(client.list(Event, namespace="default", fields={"involvedObject.name": NODE}))
    assert [(e.reason, e.type) for e in events] == [("MigConfigFailed", "Warning")]


def test_pods_that_never_leave_time_out_restore_the_labels_fail_and_are_retried(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    pod = Pod(
        metadata=ObjectMeta(
            name="nvidia-device-plugin-daemonset-x",
            namespace=NS,
            labels={"app": "nvidia-device-plugin-daemonset"},
        ),
        spec=PodSpec(nodeName=NODE, containers=[Container(name="c", image="i")]),
    )
    client.create(pod)
    with Running(client, hardware, pod_wait_s=0.3, retry_base_s=0.5):
        until(lambda: failed(client))
        assert labels(client)[PLUGIN] == "true", "labels restored on the timeout"
        reason = (client.get(Node, NODE).metadata.annotations or {})[agent.FAILURE_ANNOTATION]  # type: ignore[union-attr]
        assert "nvidia-device-plugin-daemonset-x" in reason

        client.delete(Pod, "nvidia-device-plugin-daemonset-x", namespace=NS)
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
    node = client.get(Node, NODE)
    assert agent.FAILURE_ANNOTATION not in (node.metadata.annotations or {})  # type: ignore[union-attr]


def test_an_agent_restarted_mid_apply_finishes_and_unpauses_the_clients(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(
        client,
        **{
            agent.CONFIG_LABEL: "all-1g.18gb",
            agent.STATE_LABEL: "pending",
            PLUGIN: agent.PAUSED,
            GFD: agent.PAUSED,
        },
    )
    with Running(client, hardware):
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
    now = labels(client)
    assert (now[PLUGIN], now[GFD], now[DCGM_EXPORTER]) == ("true", "true", "false")


def test_a_new_label_value_is_applied_without_restarting_the_agent(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    with Running(client, hardware):
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
        set_config(client, "all-3g.71gb")
        until(
            lambda: (
                labels(client).get(agent.STATE_LABEL) == "success"
                and _profiles(hardware) == ["3g.71gb", "3g.71gb"]
            )
        )


def _profiles(hardware: HardwareSettings) -> list[str]:
    with Nvml.open(hardware) as nvml:
        return sorted(d.profile for d in nvml.mig_devices(0))


def test_with_reboot_a_mode_change_the_gpu_cannot_take_without_a_reset_reboots_the_node(
    client: Client, tmp_path: Path
) -> None:
    hardware = HardwareSettings(sim="a30x4", sim_root=tmp_path / "sim")
    with Nvml.open(hardware):
        pass  # creates the simulated node
    faults.block_reset(StateStore(hardware.state_path()), 1)
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    with Running(client, hardware, with_reboot=True) as running:
        until(lambda: labels(client).get(agent.STATE_LABEL) == "rebooting")
        until(lambda: running.reboots == 1)
        time.sleep(0.5)
        assert labels(client)[agent.STATE_LABEL] == "rebooting", "no retry while rebooting"
        assert running.reboots == 1
    assert labels(client)[PLUGIN] == agent.PAUSED, "clients stay paused until after the reboot"


def test_a_job_on_a_gpu_to_change_fails_naming_it_pauses_nothing_and_applies_once_it_ends(
    client: Client, tmp_path: Path
) -> None:
    hardware = HardwareSettings(sim="a30x4", sim_root=tmp_path / "sim")
    with Nvml.open(hardware):
        pass
    store = StateStore(hardware.state_path())
    pid = faults.start_process(store, 1)
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    seen = history(client, PLUGIN)
    with Running(client, hardware, with_reboot=True, retry_base_s=600) as running:
        until(lambda: failed(client))
        reason = (client.get(Node, NODE).metadata.annotations or {})[agent.FAILURE_ANNOTATION]  # type: ignore[union-attr]
        assert reason.startswith(f"GPU 1 (NVIDIA A30) is in use by pid {pid} on GPU-")
        time.sleep(0.3)
        assert labels(client)[agent.STATE_LABEL] == "failed", "no retry while the job runs"
        faults.stop_processes(store, 1, pid)
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
        assert running.reboots == 0, "a busy GPU is never a reason to reboot"
    assert seen() == ["true", agent.PAUSED, "true"], "paused once: for the apply that worked"
    with Nvml.open(hardware) as nvml:
        assert all(gpu.mig_mode is not None and gpu.mig_mode.enabled for gpu in nvml.gpus())
    assert agent.FAILURE_ANNOTATION not in (client.get(Node, NODE).metadata.annotations or {})  # type: ignore[union-attr]


def test_third_party_gpu_clients_selected_on_the_client_label_are_waited_for(
    client: Client, hardware: HardwareSettings
) -> None:
    make_node(
        client, **{agent.CONFIG_LABEL: "all-balanced", "nvidia.com/gpu.deploy.client": "true"}
    )
    client.create(Namespace(metadata=ObjectMeta(name="monitoring")))
    client.create(
        Pod(
            metadata=ObjectMeta(name="vendor-gpu-agent-x", namespace="monitoring"),
            spec=PodSpec(
                nodeName=NODE,
                nodeSelector={"nvidia.com/gpu.deploy.client": "true"},
                containers=[Container(name="c", image="i")],
            ),
        )
    )
    with Running(client, hardware, pod_wait_s=0.3, retry_base_s=60):
        until(lambda: failed(client))
    reason = (client.get(Node, NODE).metadata.annotations or {})[agent.FAILURE_ANNOTATION]  # type: ignore[union-attr]
    assert "monitoring/vendor-gpu-agent-x" in reason
    assert labels(client)["nvidia.com/gpu.deploy.client"] == "true", "restored after the timeout"


def test_host_steps_persist_the_config_and_stop_then_restart_active_host_clients(
    client: Client, hardware: HardwareSettings, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    state_file = host / "etc/systemd/system/nvidia-mig-manager.service.d/override.conf"
    state_file.parent.mkdir(parents=True)
    state_file.write_text("")
    clients = tmp_path / "clients.yaml"
    clients.write_text("version: v1\nsystemd-services: [nvsm.service, dcgm.service]\n")
    commands: list[list[str]] = []

    def host_command(argv: list[str]) -> int:  # the host: only dcgm.service is running
        commands.append(argv)
        return 0 if argv[-2:] != ["is-active", "nvsm.service"] else 3

    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    settings = ManagerSettings(
        node_name=NODE,
        namespace=NS,
        poll_s=0.05,
        host_root=host,
        shutdown_host_clients=True,
        gpu_clients_file=clients,
    )
    manager = MigManager(settings, client, hardware, host_command=host_command)
    with running(manager):
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
    assert (
        state_file.read_text()
        == '[Service]\nEnvironment="MIG_PARTED_SELECTED_CONFIG=all-balanced"\n'
    )
    assert ["systemctl", "daemon-reload"] in commands
    stops = [c[-1] for c in commands if c[:2] == ["systemctl", "stop"]]
    starts = [c[-1] for c in commands if c[:2] == ["systemctl", "start"]]
    assert stops == ["dcgm.service", "kubelet.service"]  # H200 enabling MIG: a mode change
    assert starts == ["kubelet.service", "dcgm.service"]
    assert commands.index(["systemctl", "start", "dcgm.service"]) > commands.index(
        ["systemctl", "stop", "kubelet.service"]
    )


def test_a_malformed_gpu_clients_file_fails_the_apply_and_names_the_file(
    client: Client, hardware: HardwareSettings, tmp_path: Path
) -> None:
    clients = tmp_path / "clients.yaml"
    clients.write_text("systemd-services: nvsm.service\n")
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    settings = ManagerSettings(
        node_name=NODE,
        namespace=NS,
        poll_s=0.05,
        shutdown_host_clients=True,
        gpu_clients_file=clients,
        protocol=agent.Settings(retry_base_s=60),
    )
    manager = MigManager(settings, client, hardware, host_command=lambda argv: 0)
    with running(manager):
        until(lambda: failed(client))
    reason = (client.get(Node, NODE).metadata.annotations or {})[agent.FAILURE_ANNOTATION]  # type: ignore[union-attr]
    assert str(clients) in reason
    assert labels(client)[PLUGIN] == "true"


def test_with_cdi_enabled_a_change_rewrites_the_management_cdi_spec(
    client: Client, hardware: HardwareSettings, tmp_path: Path
) -> None:
    import yaml

    from helpers.cdi import validate

    cdi_dir = tmp_path / "cdi"
    make_node(client, **{agent.CONFIG_LABEL: "all-balanced"})
    settings = ManagerSettings(
        node_name=NODE,
        namespace=NS,
        poll_s=0.05,
        cdi_enabled=True,
        cdi_dir=cdi_dir,
        driver_root=tmp_path / "driver",
        driver_root_host=Path("/run/nvidia/driver"),
    )
    manager = MigManager(settings, client, hardware)
    with running(manager):
        until(lambda: labels(client).get(agent.STATE_LABEL) == "success")
    spec = yaml.safe_load((cdi_dir / "management.nvidia.com-gpu.yaml").read_text())
    validate(spec)
    assert spec["kind"] == "management.nvidia.com/gpu"
    nodes = {n["path"] for n in spec["devices"][0]["containerEdits"]["deviceNodes"]}
    assert "/dev/nvidia0" in nodes


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WITH_REBOOT", "maybe"),
        ("CDI_ENABLED", "yesplease"),
        ("WITH_SHUTDOWN_HOST_GPU_CLIENTS", "on"),
    ],
)
def test_a_boolean_variable_that_is_not_a_go_boolean_is_refused_in_one_line(
    variable: str, value: str
) -> None:
    """In-process; tests/cli/mig/test_mig_manager_cli.py starts the agent with one of them."""
    with pytest.raises(ConfigError) as caught:
        ManagerSettings.from_env({"NODE_NAME": NODE, variable: value})
    assert str(caught.value) == (
        f"{variable}={value!r}: not a boolean; use one of "
        "1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"
    )


def test_go_boolean_words_are_read_as_upstream_reads_them() -> None:
    settings = ManagerSettings.from_env(
        {
            "NODE_NAME": NODE,
            "WITH_REBOOT": "T",
            "CDI_ENABLED": "1",
            "WITH_SHUTDOWN_HOST_GPU_CLIENTS": "False",
        }
    )
    assert settings.protocol.with_reboot is True
    assert settings.cdi_enabled is True
    assert settings.shutdown_host_clients is False
