"""The seed story end to end on the sandbox, then what happens to it: a MIG pod and its
metrics, a MIG relabel across an API watch drop, a kubelet restart, an operator restart in the
middle of a rollout, a driver image that can't be pulled, an XID and a lost GPU. The tests run in
order on one cluster (see conftest); each leaves it settled for the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from gpu_operator import views
from gpu_operator.sandbox.demo import BALANCED, NAMESPACE, scrape, workload_pod
from gpu_operator.sandbox.pods import ALLOCATION_ANNOTATION
from gpu_operator.sandbox.rest import Rest
from helpers.story import MISSING_DRIVER, NODES, Story

ALL_1G = {"nvidia.com/mig-1g.5gb": 56}
CLUSTER_SUITE = Path(__file__).parent / "cluster" / "test_real_cluster.py"
POLICY = "nvidia.com/v1/clusterpolicies"


@pytest.mark.timeout(150)
def test_every_operand_runs_each_node_advertises_the_balanced_layout_and_the_policy_is_ready(
    story: Story,
) -> None:
    story.wait("the seed story", story.settled, 120)
    pods = story.rest.list("pods", NAMESPACE)
    apps = {p["metadata"]["labels"].get("app") for p in pods}
    assert {
        "nvidia-driver-daemonset",
        "nvidia-container-toolkit-daemonset",
        "nvidia-operator-validator",
        "nvidia-device-plugin-daemonset",
        "nvidia-dcgm-exporter",
        "gpu-feature-discovery",
        "nvidia-mig-manager",
    } <= apps
    assert all(views.pod_status(p) in ("Running", "Completed") for p in pods)
    driver = next(
        p for p in pods if p["metadata"]["labels"].get("app") == "nvidia-driver-daemonset"
    )
    assert (
        driver["spec"]["containers"][0]["image"]
        == "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
    )
    for node in NODES:
        labels = (story.rest.get("nodes", node) or {})["metadata"]["labels"]
        assert labels["nvidia.com/mig.config.state"] == "success"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
    for node in NODES:  # the toolkit changed containerd's config and told it to reload
        assert story.sandbox.nodes[node].runtime.reloads >= 1


def test_gpu_operator_status_reports_each_node_layout_operands_and_the_ready_policy(
    story: Story,
) -> None:
    gpu_operator = Path(sys.executable).parent / "gpu-operator"
    done = subprocess.run(
        [str(gpu_operator), "status", "--kubeconfig", str(story.sandbox.kubeconfig), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["policy"] == {"state": "ready", "problems": []}
    assert [n["name"] for n in report["nodes"]] == NODES
    for node in report["nodes"]:
        assert node["gpus"] == "8× NVIDIA-A100-SXM4-40GB"
        assert (node["mig_config"], node["mig_state"]) == ("all-balanced", "success")
        assert node["resources"] == BALANCED
        assert set(node["operands"].values()) == {"Running"}
        assert node["blocking"] == []


@pytest.mark.timeout(300)
def test_the_real_cluster_suite_passes_against_the_sandbox_through_its_kubeconfig(
    story: Story,
) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(story.sandbox.kubeconfig),
        "GPU_OPERATOR_E2E_MIG_CONFIG": "all-balanced",
        "GPU_OPERATOR_E2E_WORKLOAD": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CLUSTER_SUITE)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        env=env,
        cwd=CLUSTER_SUITE.parents[2],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout, done.stdout[-2000:]
    story.wait(
        "the suite's workload pod deleted",
        lambda: (
            []
            if story.rest.get("pods", "gpu-operator-e2e-workload", "default") is None
            else ["pod"]
        ),
        40,
    )


def test_preflight_from_the_cluster_sees_rocky_containerd_with_cdi_the_mig_layout_and_no_conflict(
    story: Story, tmp_path: Path
) -> None:
    policy = story.rest.get(POLICY, "cluster-policy") or {}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        yaml.safe_dump({k: policy[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    )
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "gpu-operator"),
            "preflight",
            "-f",
            str(policy_file),
            "--from-cluster",
            "--kubeconfig",
            str(story.sandbox.kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for node in NODES:
        assert (
            f"ok    {node}: rocky 8.5; containerd://1.7.22: CDI supported;"
            " MIG capable, config all-balanced (success)"
        ) in done.stderr
    assert "fail" not in done.stderr
    assert "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8" in done.stdout


@pytest.mark.timeout(60)
def test_a_mig_pod_gets_one_device_and_its_metrics_carry_its_pod_labels(story: Story) -> None:
    story.rest.create("pods", workload_pod("train", "nvidia.com/mig-3g.20gb"), "default")

    def running() -> list[str]:
        pod = story.rest.get("pods", "train", "default") or {}
        return [] if views.pod_status(pod) == "Running" else [views.pod_status(pod)]

    story.wait("the MIG pod", running, 20)
    pod = story.rest.get("pods", "train", "default") or {}
    node = pod["spec"]["nodeName"]
    devices = eval_json(pod["metadata"]["annotations"][ALLOCATION_ANNOTATION])
    [uuid] = devices["cuda"]["nvidia.com/mig-3g.20gb"]
    assert uuid.startswith("MIG-")
    series: list[str] = []

    def attributed() -> list[str]:
        series[:] = [
            line for line in scrape(story.rest, node).splitlines() if 'pod="train"' in line
        ]
        return [] if series else ["no series with pod=train"]

    story.wait("pod attribution", attributed, 25)
    assert all('namespace="default"' in s and 'container="cuda"' in s for s in series)
    assert all('GPU_I_PROFILE="3g.20gb"' in s for s in series)
    story.rest.delete("pods", "train", "default")


def eval_json(text: str) -> dict[str, dict[str, list[str]]]:
    result: dict[str, dict[str, list[str]]] = json.loads(text)
    return result


@contextmanager
def label_history(story: Story, node: str, key: str) -> Iterator[list[str | None]]:
    """Every value ``key`` takes on ``node`` while the block runs (sampled every 50 ms)."""
    seen: list[str | None] = []
    done = threading.Event()

    def sample() -> None:
        rest = Rest(story.sandbox.server.url)  # its own connection: Rest is not thread-safe
        try:
            while not done.is_set():
                labels = ((rest.get("nodes", node) or {}).get("metadata") or {}).get("labels")
                value = (labels or {}).get(key)
                if not seen or seen[-1] != value:
                    seen.append(value)
                done.wait(0.05)
        finally:
            rest.close()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(5)


@pytest.mark.timeout(90)
def test_a_mig_relabel_after_an_api_watch_drop_changes_the_resources_and_back(story: Story) -> None:
    server = story.sandbox.server
    server.call(server.server.drop_watches)
    server.call(server.server.compact)
    deploy = "nvidia.com/gpu.deploy.device-plugin"
    with label_history(story, "gpu-node-1", deploy) as history:
        story.label("gpu-node-1", "nvidia.com/mig.config", "all-1g.5gb")
        story.wait("all-1g.5gb on gpu-node-1", lambda: story.settled(ALL_1G, ["gpu-node-1"]), 40)
    # The MIG manager paused the device plugin for the change and gave it back.
    assert "paused-for-mig-change" in history, history
    assert history[-1] == "true", history
    assert story.allocatable("gpu-node-1").get("nvidia.com/mig-3g.20gb", 0) == 0
    story.label("gpu-node-1", "nvidia.com/mig.config", "all-balanced")
    story.wait("back to all-balanced", story.settled, 40)
    pending = [p for p in story.rest.list("pods") if views.pod_status(p) == "Pending"]
    assert pending == []


@pytest.mark.timeout(150)
def test_a_job_holding_a_mig_device_holds_off_a_relabel_with_its_name_until_it_is_deleted(
    story: Story,
) -> None:
    story.rest.create("pods", workload_pod("job", "nvidia.com/mig-3g.20gb"), "default")

    def running() -> list[str]:
        pod = story.rest.get("pods", "job", "default") or {}
        return [] if views.pod_status(pod) == "Running" else [views.pod_status(pod)]

    story.wait("the job", running, 20)
    node = (story.rest.get("pods", "job", "default") or {})["spec"]["nodeName"]
    [uuid] = eval_json(
        (story.rest.get("pods", "job", "default") or {})["metadata"]["annotations"][
            ALLOCATION_ANNOTATION
        ]
    )["cuda"]["nvidia.com/mig-3g.20gb"]

    def labels() -> dict[str, str]:
        return dict((story.rest.get("nodes", node) or {})["metadata"]["labels"])

    deploy = "nvidia.com/gpu.deploy.device-plugin"
    with label_history(story, node, deploy) as while_held:
        story.label(node, "nvidia.com/mig.config", "all-1g.5gb")
        story.wait(
            "mig.config.state=failed",
            lambda: [] if labels().get("nvidia.com/mig.config.state") == "failed" else ["state"],
            30,
        )
        reason = (story.rest.get("nodes", node) or {})["metadata"]["annotations"][
            "gpu-operator.nvidia.com/mig-config-failure"
        ]
        time.sleep(2)  # the manager keeps polling; nothing may move while the job runs
    assert "(pod default/job) on MIG 3g.20gb " + uuid in reason, reason
    assert "Nothing was changed" in reason
    assert while_held == ["true"], "the operands were not paused for a change that can't happen"
    assert {k: v for k, v in story.allocatable(node).items() if v} == BALANCED
    assert running() == []
    events = [
        e for e in story.rest.list("events", "default") if e.get("reason") == "MigConfigFailed"
    ]
    assert any("pod default/job" in e.get("message", "") for e in events), events

    story.rest.delete("pods", "job", "default")
    story.wait(
        f"all-1g.5gb on {node} once the job is gone", lambda: story.settled(ALL_1G, [node]), 60
    )
    about_job = [
        (e["reason"], e["source"]["component"])
        for e in story.rest.list("events", "default", fields="involvedObject.name=job")
    ]
    for expected in [
        ("Scheduled", "default-scheduler"),
        ("Pulled", "kubelet"),
        ("Created", "kubelet"),
        ("Started", "kubelet"),
        ("Killing", "kubelet"),
    ]:
        assert expected in about_job, about_job
    assert "gpu-operator.nvidia.com/mig-config-failure" not in (
        (story.rest.get("nodes", node) or {})["metadata"].get("annotations") or {}
    )
    story.label(node, "nvidia.com/mig.config", "all-balanced")
    story.wait("back to all-balanced", story.settled, 40)


@pytest.mark.timeout(30)
def test_after_a_kubelet_restart_the_device_plugin_registers_again(story: Story) -> None:
    kubelet = story.sandbox.nodes["gpu-node-1"].kubelet
    assert kubelet is not None
    restarted_at = time.monotonic()
    kubelet.restart()
    assert kubelet.allocatable("nvidia.com/mig-3g.20gb") == 0  # the old streams are gone
    state = kubelet.state("nvidia.com/mig-3g.20gb")
    # A new registration opens a new ListAndWatch stream, whose first message lists the devices.
    assert kubelet.wait_until(lambda: state.messages[-1][0] > restarted_at, 10)
    assert kubelet.allocatable("nvidia.com/mig-3g.20gb") == 8
    story.wait("node status after the kubelet restart", story.settled, 10)


@pytest.mark.timeout(90)
def test_an_operator_restart_mid_rollout_still_finishes_the_rollout(story: Story) -> None:
    env = [{"name": "DCGM_EXPORTER_INTERVAL", "value": "5000"}]
    story.rest.patch(POLICY, "cluster-policy", {"spec": {"dcgmExporter": {"env": env}}})
    operator = story.rest.list("pods", NAMESPACE, labels="app=gpu-operator")
    assert operator, "the operator runs as a pod of its Deployment"
    old = operator[0]["metadata"]["name"]
    story.rest.delete("pods", old, NAMESPACE)
    marked = story.rest.get("pods", old, NAMESPACE)
    assert marked is not None, "deleted gracefully: the pod stays until its kubelet stopped it"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    story.wait(
        "the old operator pod stopped and removed",
        lambda: [] if story.rest.get("pods", old, NAMESPACE) is None else [old],
        40,
    )

    def rolled_out() -> list[str]:
        ds = story.rest.get("daemonsets", "nvidia-dcgm-exporter", NAMESPACE) or {}
        container = ds["spec"]["template"]["spec"]["containers"][0]
        has_env = {"name": "DCGM_EXPORTER_INTERVAL", "value": "5000"} in container.get("env", [])
        return ([] if has_env else ["the exporter DaemonSet has no new env"]) + story.settled()

    story.wait("the exporter rollout across an operator restart", rolled_out, 60)


@pytest.mark.timeout(90)
def test_a_driver_image_that_does_not_exist_is_image_pull_back_off_named_by_the_policy(
    story: Story,
) -> None:
    story.rest.patch(POLICY, "cluster-policy", {"spec": {"driver": {"version": MISSING_DRIVER}}})
    # OnDelete: nothing moves until the pod goes.
    driver = story.rest.list(
        "pods", NAMESPACE, labels="app=nvidia-driver-daemonset", fields="spec.nodeName=gpu-node-2"
    )
    story.rest.delete("pods", driver[0]["metadata"]["name"], NAMESPACE)

    def blocked() -> list[str]:
        _, problems = views.policy_summary(story.rest.get(POLICY, "cluster-policy"))
        named = [p for p in problems if "ImagePullBackOff" in p and MISSING_DRIVER in p]
        return [] if named else [f"policy problems: {problems}"]

    story.wait("the policy naming the missing image", blocked, 40)
    story.rest.patch(POLICY, "cluster-policy", {"spec": {"driver": {"version": "450.156.00"}}})

    # Wherever the bad version got to (the upgrade controller may still roll it to the other
    # node until it sees the fixed policy), the admin deletes the pods that can't pull until
    # none is left; OnDelete brings them back on 450.156.00.
    def delete_unpullable_then_check() -> list[str]:
        for pod in story.rest.list("pods", NAMESPACE, labels="app=nvidia-driver-daemonset"):
            if MISSING_DRIVER in pod["spec"]["containers"][0]["image"]:
                story.rest.delete("pods", pod["metadata"]["name"], NAMESPACE)
        return story.settled()

    story.wait("the driver back", delete_unpullable_then_check, 60)


@pytest.mark.timeout(120)
def test_a_driver_version_bump_walks_every_node_through_the_upgrade_to_done(story: Story) -> None:
    story.rest.patch(POLICY, "cluster-policy", {"spec": {"driver": {"version": "450.156.01"}}})
    seen: set[str] = set()

    def upgraded() -> list[str]:
        left = []
        for pod in story.rest.list("pods", NAMESPACE, labels="app=nvidia-driver-daemonset"):
            if not pod["spec"]["containers"][0]["image"].endswith(":450.156.01-rocky8"):
                left.append(
                    f"{pod['metadata']['name']} still {pod['spec']['containers'][0]['image']}"
                )
        for node in NODES:
            obj = story.rest.get("nodes", node) or {}
            state = obj["metadata"]["labels"].get("nvidia.com/gpu-driver-upgrade-state", "")
            seen.add(state)
            if state != "upgrade-done":
                left.append(f"{node}: upgrade state {state!r}")
            if obj["spec"].get("unschedulable"):
                left.append(f"{node}: still cordoned")
        return left + story.settled()

    story.wait("the driver upgrade", upgraded, 100)
    assert seen - {"upgrade-done"}, f"no upgrade state but done was ever seen: {seen}"


@pytest.mark.timeout(60)
def test_an_xid_makes_a_device_unhealthy_and_a_lost_gpu_takes_its_devices_away(
    story: Story,
) -> None:
    before = story.allocatable("gpu-node-2")
    story.sim("gpu-node-2", "xid", "3", "--code", "48")

    def dropped(than: dict[str, int]) -> list[str]:
        now = story.allocatable("gpu-node-2")
        return [] if sum(now.values()) < sum(than.values()) else [f"allocatable still {now}"]

    story.wait("allocatable to drop after XID 48", lambda: dropped(before), 15)
    after_xid = story.allocatable("gpu-node-2")
    story.sim("gpu-node-2", "lose", "5")
    story.wait("allocatable to drop after a lost GPU", lambda: dropped(after_xid), 15)
    capacity = (story.rest.get("nodes", "gpu-node-2") or {})["status"]["capacity"]
    assert int(capacity["nvidia.com/mig-3g.20gb"]) == BALANCED["nvidia.com/mig-3g.20gb"]


def test_the_real_kubectl_lists_the_operand_pods_through_the_written_kubeconfig(
    story: Story,
) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        pytest.skip("kubectl is not installed in the venv")
    done = subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            str(story.sandbox.kubeconfig),
            "get",
            "pods",
            "-A",
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    names = done.stdout.split()
    assert sum(n.startswith("pod/nvidia-device-plugin-daemonset-") for n in names) == 2
    assert sum(n.startswith("pod/nvidia-mig-manager-") for n in names) == 2


def test_the_real_kubectl_sees_the_operator_rolled_out_through_its_replicaset(
    story: Story,
) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        pytest.skip("kubectl is not installed in the venv")
    base = [str(kubectl), "--kubeconfig", str(story.sandbox.kubeconfig), "-n", NAMESPACE]
    rollout = subprocess.run(
        [*base, "rollout", "status", "deployment/gpu-operator", "--timeout=30s"],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert rollout.returncode == 0, rollout.stderr
    assert 'deployment "gpu-operator" successfully rolled out' in rollout.stdout
    sets = subprocess.run(
        [*base, "get", "rs", "-o", "name"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    operator = story.rest.list("pods", NAMESPACE, labels="app=gpu-operator")
    [owner] = operator[0]["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReplicaSet"
    assert f"replicaset.apps/{owner['name']}" in sets
    described = subprocess.run(
        [*base, "describe", "pod", operator[0]["metadata"]["name"]],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert f"Controlled By:  ReplicaSet/{owner['name']}" in described, described
    events = described[described.index("Events:") :]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events, events
