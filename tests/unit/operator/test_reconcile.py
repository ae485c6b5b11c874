"""The pure reconcile core: the oldest policy wins, DaemonSet readiness follows upstream's rule,
an unchanged status keeps its transition times (no write), and a settled cluster plans nothing."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.executables import EXECUTABLES, command_line
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.reconcile import Observed, active_policy, plan
from gpu_operator.operator.status import carry_transition_times, daemonset_blocker, obj_key


def policy(name: str, created: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "generation": 1,
        },
        "spec": spec or {},
    }


def test_the_oldest_policy_is_the_singleton_and_the_name_breaks_ties() -> None:
    a, b, c = (
        policy("b", "2026-01-01T00:00:00Z"),
        policy("a", "2026-01-01T00:00:00Z"),
        policy("c", "2025-01-01T00:00:00Z"),
    )
    assert active_policy([a, b, c]) is c
    assert active_policy([a, b]) is b


def test_without_a_policy_nothing_is_planned() -> None:
    assert plan(Observed(policies=[], nodes=[], owned={})).writes == 0


@pytest.mark.parametrize(
    ("status", "generation", "blocker"),
    [
        pytest.param({"desiredNumberScheduled": 0}, 1, None, id="nothing to schedule is ready"),
        pytest.param(
            {
                "desiredNumberScheduled": 2,
                "numberAvailable": 2,
                "updatedNumberScheduled": 2,
                "observedGeneration": 3,
            },
            3,
            None,
            id="all updated and available",
        ),
        pytest.param(
            {
                "desiredNumberScheduled": 2,
                "numberAvailable": 1,
                "numberUnavailable": 1,
                "updatedNumberScheduled": 2,
                "observedGeneration": 3,
            },
            3,
            "1/2 pods available",
            id="one unavailable",
        ),
        pytest.param(
            {
                "desiredNumberScheduled": 2,
                "numberAvailable": 2,
                "updatedNumberScheduled": 1,
                "observedGeneration": 3,
            },
            3,
            "1/2 pods updated",
            id="one on the old revision",
        ),
        pytest.param(
            {
                "desiredNumberScheduled": 2,
                "numberAvailable": 2,
                "updatedNumberScheduled": 2,
                "observedGeneration": 2,
            },
            3,
            "rollout not observed yet (generation 3, observed 2)",
            id="rollout not observed",
        ),
    ],
)
def test_daemonset_readiness_follows_upstream(
    status: dict[str, int], generation: int, blocker: str | None
) -> None:
    assert daemonset_blocker({"metadata": {"generation": generation}, "status": status}) == blocker


def test_an_unchanged_condition_keeps_its_transition_time() -> None:
    old = {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]}
    new = {
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t1"},
            {"type": "Error", "status": "False", "lastTransitionTime": "t1"},
        ]
    }
    assert [c["lastTransitionTime"] for c in carry_transition_times(new, old)["conditions"]] == [
        "t0",
        "t1",
    ]


def gpu_node() -> NodeFacts:
    return NodeFacts(
        name="gpu-1",
        labels={
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
        },
        annotations={},
    )


def test_applying_a_plan_to_its_own_inputs_leaves_nothing_to_do() -> None:
    first = plan(Observed(policies=[policy("p", "t")], nodes=[gpu_node()], owned={}))
    assert first.applies
    assert first.node_patches
    ready = {"desiredNumberScheduled": 0}
    owned = {obj_key(o): {**o, "status": ready} for o in first.applies}
    labelled = NodeFacts(
        name="gpu-1",
        labels={
            **gpu_node().labels,
            **{k: v for k, v in first.node_patches["gpu-1"].labels.items() if v},
        },
        annotations={},
    )
    p = policy("p", "t")
    p["status"] = first.statuses["p"]
    second = plan(Observed(policies=[p], nodes=[labelled], owned=owned))
    assert (second.applies, second.deletes, dict(second.node_patches)) == ([], [], {})
    third = plan(
        Observed(
            policies=[{**p, "status": second.statuses.get("p", p["status"])}],
            nodes=[labelled],
            owned=owned,
        )
    )
    assert third.writes == 0
    assert third.ready is True


def test_every_upstream_executable_maps_to_a_gpu_operator_subcommand() -> None:
    assert command_line("nvidia-validator", ["-c", "driver"]) == [
        "gpu-operator",
        "validator",
        "-c",
        "driver",
    ]
    missing = []
    for name, sub in EXECUTABLES.items():
        if CliRunner().invoke(app, [*sub, "--help"]).exit_code != 0:
            missing.append(name)
    assert missing == []


def test_losing_every_gpu_node_deletes_no_operand() -> None:
    first = plan(Observed(policies=[policy("p", "t")], nodes=[gpu_node()], owned={}))
    owned = {obj_key(o): o for o in first.applies}
    assert plan(Observed(policies=[policy("p", "t")], nodes=[], owned=owned)).deletes == []


def test_a_pool_whose_nodes_left_is_deleted() -> None:
    first = plan(Observed(policies=[policy("p", "t")], nodes=[gpu_node()], owned={}))
    owned = {obj_key(o): o for o in first.applies}
    rocky = NodeFacts(
        name="gpu-2",
        labels={
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "rocky",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": "9.4",
        },
        annotations={},
    )
    second = plan(Observed(policies=[policy("p", "t")], nodes=[rocky], owned=owned))
    assert second.deletes == []  # same name, new image: an update, not a delete
    assert [
        o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in second.applies
        if o["metadata"]["name"] == "nvidia-driver-daemonset"
    ] == ["nvcr.io/nvidia/driver:595.91.07-rocky9"]
    both = plan(Observed(policies=[policy("p", "t")], nodes=[gpu_node(), rocky], owned=owned))
    assert ("DaemonSet", "gpu-operator", "nvidia-driver-daemonset") in both.deletes


def test_an_applied_service_monitor_counts_as_there_though_no_watch_reports_it() -> None:
    """NVIDIA's main values turn the exporter's ServiceMonitor on; no watch lists that kind, so
    its applied hash stands for it, else the policy would wait for it forever."""
    spec = {"dcgmExporter": {"serviceMonitor": {"enabled": True}}}
    first = plan(Observed(policies=[policy("p", "t", spec)], nodes=[gpu_node()], owned={}))
    ready = {"desiredNumberScheduled": 0}
    monitors = [o for o in first.applies if o["kind"] == "ServiceMonitor"]
    assert monitors
    owned = {obj_key(o): {**o, "status": ready} for o in first.applies if o not in monitors}
    hashes = {
        obj_key(o): o["metadata"]["annotations"]["nvidia.com/last-applied-hash"] for o in monitors
    }
    labelled = NodeFacts(
        name="gpu-1",
        labels={
            **gpu_node().labels,
            **{k: v for k, v in first.node_patches["gpu-1"].labels.items() if v},
        },
        annotations={},
    )
    seen = Observed(
        policies=[policy("p", "t", spec)], nodes=[labelled], owned=owned, applied_hashes=hashes
    )
    assert plan(seen).ready is True
    unseen = Observed(policies=[policy("p", "t", spec)], nodes=[labelled], owned=owned)
    assert plan(unseen).ready is False
