"""How pods, nodes and the policy read: kubectl's STATUS/READY, settled pods, GPU resources."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator import views

Obj = dict[str, Any]


def pod(phase: str, *, init: list[Obj] | None = None, main: list[Obj] | None = None) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "gpu-operator"},
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "c"}]},
        "status": {
            "phase": phase,
            "initContainerStatuses": init or [],
            "containerStatuses": main or [],
        },
    }


DONE = {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
RUNNING = {"state": {"running": {}}, "ready": True}


@pytest.mark.parametrize(
    ("obj", "status", "is_settled"),
    [
        pytest.param(
            pod("Pending", init=[DONE, {"state": {"running": {}}}]),
            "Init:1/2",
            False,
            id="second init container running",
        ),
        pytest.param(
            pod("Pending", init=[{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
            "Init:CrashLoopBackOff",
            False,
            id="init crash loop",
        ),
        pytest.param(
            pod("Pending", main=[{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]),
            "ImagePullBackOff",
            False,
            id="image pull back-off",
        ),
        pytest.param(
            pod("Running", init=[DONE], main=[RUNNING]), "Running", True, id="running and ready"
        ),
        pytest.param(
            pod("Running", main=[{"state": {"running": {}}, "ready": False}]),
            "Running",
            False,
            id="running, not ready",
        ),
        pytest.param(pod("Succeeded"), "Completed", True, id="completed"),
    ],
)
def test_pod_status_reads_like_kubectl_and_only_ready_or_completed_pods_are_settled(
    obj: Obj, status: str, is_settled: bool
) -> None:
    assert views.pod_status(obj) == status
    assert views.settled(obj) is is_settled
    assert bool(views.blockers([obj])) is not is_settled


def test_gpu_resources_are_the_nonzero_nvidia_allocatables() -> None:
    node = {
        "status": {
            "allocatable": {"cpu": "64", "nvidia.com/gpu": "0", "nvidia.com/mig-1g.5gb": "16"}
        }
    }
    assert views.gpu_resources(node) == {"nvidia.com/mig-1g.5gb": 16}


def test_the_policy_summary_names_the_states_that_are_not_ready() -> None:
    policy = {
        "status": {
            "state": "notReady",
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "state-driver", "status": "False", "message": "0/2 pods available"},
                {"type": "state-device-plugin", "status": "True"},
            ],
        }
    }
    assert views.policy_summary(policy) == ("notReady", ["state-driver: 0/2 pods available"])
    assert views.policy_summary(None) == ("absent", ["no ClusterPolicy"])
