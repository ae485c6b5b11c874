"""The driver manager against the API emulator and a host directory: pre-installed detection,
a stale pre-installed label, the pause → wait → evict → unload → restore protocol (appending to
an existing pause), bounded waits that restore before they report, and the unchanged digest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Event, Node, Pod
from lightkube.types import PatchType
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.driver.manager import FAILURE_ANNOTATION, ManagerSettings, Mode, pause, restore
from gpu_operator.driver.managing import DriverManager, DriverManagerError, HostPaths
from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.driver_cluster import NS, Cluster

NODE = "gpu-00"
LABELS = {
    "nvidia.com/gpu.deploy.driver": "true",
    "nvidia.com/gpu.deploy.device-plugin": "true",
    "nvidia.com/gpu.deploy.dcgm": "paused-for-mig-change",
    "nvidia.com/gpu.deploy.gpu-feature-discovery": "false",
}


@pytest.fixture
def host(tmp_path: Path) -> HostPaths:
    paths = HostPaths(tmp_path / "host", tmp_path / "sys", tmp_path / "run" / "nvidia-driver.state")
    (paths.sys_module / "nvidia").mkdir(parents=True)
    (paths.sys_module / "nvidia" / "refcnt").write_text("0\n")
    paths.host_root.mkdir()
    return paths


def settings(host: HostPaths, **kw: object) -> ManagerSettings:
    env = {
        "NODE_NAME": NODE,
        "OPERATOR_NAMESPACE": NS,
        "OPERAND_WAIT_TIMEOUT_SECONDS": "2",
        "MAX_WAIT_SECONDS": "2",
        "UNLOAD_COMMAND": f"rm {host.sys_module}/nvidia/refcnt",
        **{k: str(v) for k, v in kw.items()},
    }
    return ManagerSettings.from_env(env)


def agent(client: Client, host: HostPaths, **kw: object) -> DriverManager:
    return DriverManager(settings(host, **kw), client, host, poll_s=0.02)


@pytest.fixture
def node(cluster: Cluster) -> Cluster:
    cluster.node(NODE, LABELS)
    cluster.pod(
        "nvidia-device-plugin-daemonset-x",
        NODE,
        namespace=NS,
        labels={"app": "nvidia-device-plugin-daemonset"},
        owner={"kind": "DaemonSet", "name": "nvidia-operator-validator"},
    )
    cluster.pod("train", NODE, gpu=True)
    return cluster


@pytest.fixture
def daemonset_controller(node: Cluster, client: Client) -> Iterator[list[dict[str, str]]]:
    """Deletes the device plugin pod once its deploy label is paused; records what it saw."""
    seen: list[dict[str, str]] = []
    stop = threading.Event()

    def play() -> None:
        while not stop.wait(0.02):
            labels = node.labels(NODE)
            seen.append(labels)
            if labels["nvidia.com/gpu.deploy.device-plugin"] != "true":
                for pod in client.list(
                    Pod, namespace=NS, labels={"app": "nvidia-device-plugin-daemonset"}
                ):
                    client.delete(Pod, str(pod.metadata.name), namespace=NS)  # type: ignore[union-attr]

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join()


def test_a_host_installed_driver_labels_the_node_pre_installed_and_stops(
    node: Cluster, client: Client, host: HostPaths
) -> None:
    (host.host_root / "usr" / "bin").mkdir(parents=True)
    (host.host_root / "usr" / "bin" / "nvidia-smi").write_text("")
    assert agent(client, host).uninstall_driver() is Mode.PRE_INSTALLED
    assert node.labels(NODE) == {**LABELS, "nvidia.com/gpu.deploy.driver": "pre-installed"}
    assert node.pod_names() == ["train"]


def test_a_stale_pre_installed_label_is_reported_and_cleared(
    node: Cluster, client: Client, host: HostPaths
) -> None:
    client.patch(
        Node,
        NODE,
        {"metadata": {"labels": {"nvidia.com/gpu.deploy.driver": "pre-installed"}}},
        patch_type=PatchType.MERGE,
    )
    assert agent(client, host).check_pre_installed() is True
    assert node.labels(NODE)["nvidia.com/gpu.deploy.driver"] == "true"
    assert "has no NVIDIA driver" in node.annotations(NODE)[FAILURE_ANNOTATION]
    reasons = [(e.reason, e.type) for e in client.list(Event, namespace="default")]
    assert reasons == [("DriverPreInstalledLabelStale", "Warning")]


def test_a_reinstall_pauses_operands_appending_to_a_pause_evicts_unloads_and_restores(
    node: Cluster, client: Client, host: HostPaths, daemonset_controller: list[dict[str, str]]
) -> None:
    assert agent(client, host).uninstall_driver() is Mode.REINSTALL
    paused = [s for s in daemonset_controller if s["nvidia.com/gpu.deploy.device-plugin"] != "true"]
    assert paused, "the operands were never paused"
    assert paused[0]["nvidia.com/gpu.deploy.device-plugin"] == "paused-for-driver-upgrade"
    assert (
        paused[0]["nvidia.com/gpu.deploy.dcgm"] == "paused-for-mig-change_paused-for-driver-upgrade"
    )
    assert paused[0]["nvidia.com/gpu.deploy.gpu-feature-discovery"] == "false"
    assert node.labels(NODE) == LABELS  # restored exactly
    assert node.pod_names() == []  # the GPU pod was evicted
    assert not (host.sys_module / "nvidia" / "refcnt").exists()  # unloaded


def test_operand_pods_that_never_leave_time_out_and_the_labels_are_restored_first(
    node: Cluster, client: Client, host: HostPaths
) -> None:
    with pytest.raises(
        DriverManagerError,
        match=r"timed out after 2s waiting for operand pods "
        r"to leave: nvidia-device-plugin-daemonset-x",
    ):
        agent(client, host).uninstall_driver()
    assert node.labels(NODE) == LABELS
    assert node.annotations(NODE)[FAILURE_ANNOTATION].startswith("timed out after 2s")
    events = [(e.reason, e.type) for e in client.list(Event, namespace="default")]
    assert events == [("DriverManagerFailed", "Warning")]
    assert (host.sys_module / "nvidia" / "refcnt").exists()  # nothing unloaded


def test_a_busy_driver_without_auto_drain_fails_naming_the_unload_error(
    node: Cluster, client: Client, host: HostPaths, daemonset_controller: list[dict[str, str]]
) -> None:
    busy = "echo 'rmmod: ERROR: Module nvidia is in use' >&2; exit 1"
    with pytest.raises(DriverManagerError, match=r"in use and cannot be unloaded.*in use"):
        agent(client, host, UNLOAD_COMMAND=busy).uninstall_driver()
    assert node.labels(NODE) == LABELS
    assert not node.unschedulable(NODE)


def test_an_unchanged_config_digest_keeps_the_driver_and_disturbs_nothing(
    node: Cluster, client: Client, host: HostPaths
) -> None:
    host.state_file.parent.mkdir(parents=True)
    host.state_file.write_text("DRIVER_CONFIG_DIGEST=abc123\n")
    mode = agent(client, host, DRIVER_CONFIG_DIGEST="abc123").uninstall_driver()
    assert mode is Mode.UNCHANGED
    assert node.labels(NODE) == LABELS
    assert node.pod_names() == ["train"]
    assert (host.sys_module / "nvidia" / "refcnt").exists()


def test_a_manager_restarted_mid_run_restores_what_it_paused() -> None:
    paused = {**LABELS, **pause(LABELS)}
    assert {**paused, **restore(paused)} == LABELS
    assert pause(paused) == {}  # pausing twice changes nothing


def test_a_busy_driver_with_auto_drain_cordons_drains_unloads_and_uncordons(
    node: Cluster, client: Client, host: HostPaths, daemonset_controller: list[dict[str, str]]
) -> None:
    node.pod("web", NODE)
    node.pod("keep", NODE, labels={"nvidia.com/gpu-driver-upgrade-drain.skip": "true"})
    # busy until the web pod is gone, as a module held by a process in that pod would be
    busy_until_drained = (
        f"if [ -e {host.host_root}/web-running ]; then echo 'Module nvidia is in use' >&2; "
        f"exit 1; fi; rm {host.sys_module}/nvidia/refcnt"
    )
    (host.host_root / "web-running").write_text("")
    seen_cordon: list[bool] = []

    def drain_watch() -> None:
        while not stop.wait(0.02):
            seen_cordon.append(node.unschedulable(NODE))
            if "web" not in node.pod_names():
                (host.host_root / "web-running").unlink(missing_ok=True)

    stop = threading.Event()
    watcher = threading.Thread(target=drain_watch, daemon=True)
    watcher.start()
    try:
        mode = agent(client, host, ENABLE_AUTO_DRAIN="true", UNLOAD_COMMAND=busy_until_drained)
        assert mode.uninstall_driver() is Mode.REINSTALL
    finally:
        stop.set()
        watcher.join()
    assert any(seen_cordon)
    assert not node.unschedulable(NODE)
    assert node.pod_names() == ["keep"]
    assert node.labels(NODE) == LABELS
    assert not (host.sys_module / "nvidia" / "refcnt").exists()


def test_the_command_line_runs_the_init_container_with_upstream_env_vars(
    node: Cluster, server_thread: ServerThread, host: HostPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    (host.host_root / "usr" / "bin").mkdir(parents=True)
    (host.host_root / "usr" / "bin" / "nvidia-smi").write_text("")
    monkeypatch.setenv("NODE_NAME", NODE)
    monkeypatch.setenv("HOST_ROOT", str(host.host_root))
    result = CliRunner().invoke(
        app, ["driver-manager", "uninstall_driver", "--server", server_thread.url]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"driver-manager: {NODE}: pre-installed\n"
    assert node.labels(NODE)["nvidia.com/gpu.deploy.driver"] == "pre-installed"


def test_an_unknown_command_is_one_clear_line() -> None:
    result = CliRunner().invoke(app, ["driver-manager", "reinstall"])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == (
        "driver-manager: unknown command 'reinstall'; use uninstall_driver or preflight_check"
    )
