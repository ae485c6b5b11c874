"""``gpu-operator status``: what a GPU node's line says, and what it names as blocking."""

from __future__ import annotations

from typing import Any

from gpu_operator.commands.status import cluster_report, node_report

Obj = dict[str, Any]


def node(**labels: str) -> Obj:
    base = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    }
    return {
        "metadata": {"name": "gpu-node-1", "labels": {**base, **labels}},
        "spec": {},
        "status": {"allocatable": {"nvidia.com/mig-3g.20gb": "8", "cpu": "64"}},
    }


def pod(app: str, phase: str, waiting: str | None = None) -> Obj:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": f"{app}-x", "namespace": "gpu-operator", "labels": {"app": app}},
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "c"}]},
        "status": {"phase": phase, "containerStatuses": [{"state": state, "ready": not waiting}]},
    }


def test_a_settled_node_reports_its_gpus_layout_and_running_operands_with_nothing_blocking() -> (
    None
):
    report = node_report(
        node(**{"nvidia.com/mig.config": "all-balanced", "nvidia.com/mig.config.state": "success"}),
        [pod("nvidia-device-plugin-daemonset", "Running")],
    )
    assert report.gpus == "8× NVIDIA-A100-SXM4-40GB"
    assert (report.mig_config, report.mig_state) == ("all-balanced", "success")
    assert report.resources == {"nvidia.com/mig-3g.20gb": 8}
    assert report.operands == {"nvidia-device-plugin-daemonset": "Running"}
    assert report.blocking == []


def test_a_node_names_what_blocks_it_pod_reasons_paused_operands_failed_mig_and_cordon() -> None:
    cordoned = node(
        **{
            "nvidia.com/mig.config": "all-1g.5gb",
            "nvidia.com/mig.config.state": "failed",
            "nvidia.com/gpu.deploy.device-plugin": "paused-for-mig-change",
        }
    )
    cordoned["spec"]["unschedulable"] = True
    report = node_report(cordoned, [pod("nvidia-driver-daemonset", "Pending", "ImagePullBackOff")])
    assert report.blocking == [
        "pod nvidia-driver-daemonset-x: ImagePullBackOff",
        "nvidia-device-plugin-daemonset is paused-for-mig-change"
        " (nvidia.com/gpu.deploy.device-plugin)",
        "MIG config all-1g.5gb failed: see the nvidia-mig-manager pod's log",
        "node is cordoned (spec.unschedulable)",
    ]


def test_only_gpu_nodes_are_reported_and_a_missing_policy_is_said() -> None:
    cpu_node = {"metadata": {"name": "cpu-1", "labels": {}}, "status": {}}
    reports, state, problems = cluster_report([node(), cpu_node], [], None)
    assert [r.name for r in reports] == ["gpu-node-1"]
    assert (state, problems) == ("absent", ["no ClusterPolicy"])


def test_a_failed_mig_change_is_reported_with_the_reason_the_mig_manager_left_on_the_node() -> None:
    failed = node(
        **{"nvidia.com/mig.config": "all-1g.5gb", "nvidia.com/mig.config.state": "failed"}
    )
    reason = "GPU 0 (NVIDIA A100-SXM4-40GB) is in use by pid 7 (pod default/job) on MIG 3g.20gb"
    failed["metadata"]["annotations"] = {"gpu-operator.nvidia.com/mig-config-failure": reason}
    assert node_report(failed, []).blocking == [f"MIG config all-1g.5gb failed: {reason}"]
