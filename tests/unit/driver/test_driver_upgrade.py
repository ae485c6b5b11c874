"""The upgrade state machine, driven against a small in-memory cluster: exact state strings and
order, the limits, pod deletion and drain, validation, failure and recovery, and (hypothesis)
limits never exceeded while every node reaches ``upgrade-done``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_operator.driver.upgrade import (
    EVENT_REASON,
    IN_PROGRESS,
    UPGRADE_DONE,
    UPGRADE_FAILED,
    UPGRADE_REQUIRED,
    Emit,
    plan,
    unavailable,
)
from gpu_operator.driver.upgrade_model import (
    DRAIN_SKIP_LABEL,
    FAILURE,
    INITIAL_UNSCHEDULABLE,
    SKIP_LABEL,
    STATE_LABEL,
    UPGRADE_REQUESTED,
    WAIT_FOR_SAFE_LOAD,
    UpgradePolicy,
    resolve_max_unavailable,
)
from gpu_operator.errors import ConfigError
from gpu_operator.labelselectors import parse_selector
from gpu_operator.operator.policy_v1 import DriverUpgradePolicySpec
from gpu_operator.operator.upgrade_policy import upgrade_policy
from helpers.upgrade_world import World, gpu_pod

ORDER = [
    "upgrade-required",
    "cordon-required",
    "wait-for-jobs-required",
    "pod-deletion-required",
    "pod-restart-required",
    "validation-required",
    "uncordon-required",
    "upgrade-done",
]


def run(
    world: World, policy: UpgradePolicy, *, steps: int = 200, dt: float = 10.0
) -> list[dict[str, str]]:
    """Step until nothing is left to do; the states after every step."""
    history = []
    now = 1_000_000.0
    for _ in range(steps):
        step = plan(world.view(), policy, now)
        world.apply(step)
        world.kubelet()
        history.append(world.states())
        if step.empty and not any(s in IN_PROGRESS for s in history[-1].values()):
            break
        now += dt
    return history


def test_a_node_walks_every_upstream_state_in_order() -> None:
    world = World.of(1)
    world.generation = 2
    history = run(world, UpgradePolicy())
    seen: list[str] = []
    for states in history:
        if not seen or seen[-1] != states["gpu-00"]:
            seen.append(states["gpu-00"])
    assert seen == ORDER
    assert world.nodes["gpu-00"].restarts == 1
    assert not world.nodes["gpu-00"].unschedulable
    messages = [m for _, _, m in world.events]
    assert messages[-1] == "Successfully updated node state label to upgrade-done"


def test_an_unlabelled_node_with_a_current_driver_is_marked_done_and_left_alone() -> None:
    world = World.of(2)
    run(world, UpgradePolicy())
    assert world.states() == {"gpu-00": UPGRADE_DONE, "gpu-01": UPGRADE_DONE}
    assert not any(n.restarts for n in world.nodes.values())
    assert plan(world.view(), UpgradePolicy(), 0).empty


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        pytest.param("25%", 10, 3, id="25% of 10 rounds up to 3"),
        pytest.param("25%", 4, 1, id="25% of 4 is 1"),
        pytest.param("1%", 3, 1, id="1% of 3 rounds up to 1"),
        pytest.param("0%", 10, 0, id="0% is none"),
        pytest.param(2, 10, 2, id="a count stays a count"),
        pytest.param("3", 10, 3, id="a digit string is a count"),
    ],
)
def test_max_unavailable_resolves_like_upstream(
    value: int | str, total: int, expected: int
) -> None:
    assert resolve_max_unavailable(value, total) == expected


def test_a_bad_max_unavailable_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"spec.driver.upgradePolicy.maxUnavailable: 'lots'"):
        upgrade_policy(DriverUpgradePolicySpec(maxUnavailable="lots"))


def test_ten_nodes_with_25_percent_and_two_parallel_never_exceed_two_at_once() -> None:
    world = World.of(10)
    world.generation = 2
    policy = upgrade_policy(
        DriverUpgradePolicySpec(autoUpgrade=True, maxParallelUpgrades=2, maxUnavailable="25%")
    )
    history = run(world, policy)
    assert max(sum(s in IN_PROGRESS for s in h.values()) for h in history) == 2
    assert set(world.states().values()) == {UPGRADE_DONE}


def test_an_already_cordoned_node_starts_first_and_stays_cordoned_after() -> None:
    world = World.of(3)
    world.generation = 2
    world.nodes["gpu-02"].unschedulable = True
    step = plan(world.view(), UpgradePolicy(max_parallel=1), 0)
    world.apply(step)
    step = plan(world.view(), UpgradePolicy(max_parallel=1), 0)
    world.apply(step)
    assert world.state("gpu-02") == "cordon-required"
    assert world.nodes["gpu-02"].annotations[INITIAL_UNSCHEDULABLE] == "true"
    run(world, UpgradePolicy(max_parallel=1))
    assert world.nodes["gpu-02"].unschedulable
    assert not world.nodes["gpu-00"].unschedulable
    assert INITIAL_UNSCHEDULABLE not in world.nodes["gpu-02"].annotations


def test_the_skip_label_keeps_a_node_waiting_and_others_go_on() -> None:
    world = World.of(2)
    world.generation = 2
    world.nodes["gpu-00"].labels[SKIP_LABEL] = "true"
    run(world, UpgradePolicy())
    assert world.states() == {"gpu-00": UPGRADE_REQUIRED, "gpu-01": UPGRADE_DONE}


def test_gpu_pods_are_deleted_and_drain_is_skipped_when_deletion_works() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].pods = [gpu_pod("train")]
    history = run(world, UpgradePolicy(drain_enable=True))
    assert world.nodes["gpu-00"].pods == []
    assert all(h["gpu-00"] != "drain-required" for h in history)


def test_a_gpu_pod_with_empty_dir_goes_to_drain_when_drain_is_on() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].pods = [
        gpu_pod("scratch", empty_dir=True),
        gpu_pod("web", gpu=False),
        gpu_pod("operator", gpu=False, labels={DRAIN_SKIP_LABEL: "true"}),
        gpu_pod("ds-pod", gpu=False, daemonset=True),
    ]
    policy = UpgradePolicy(drain_enable=True, drain_empty_dir=True)
    history = run(world, policy)
    assert any(h["gpu-00"] == "drain-required" for h in history)
    assert world.state("gpu-00") == UPGRADE_DONE
    assert sorted(p.name for p in world.nodes["gpu-00"].pods) == ["ds-pod", "operator"]


def test_the_drain_pod_selector_limits_what_is_evicted() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].pods = [
        gpu_pod("scratch", empty_dir=True),
        gpu_pod("batch", gpu=False, labels={"tier": "batch"}),
        gpu_pod("web", gpu=False, labels={"tier": "web"}),
    ]
    policy = UpgradePolicy(
        drain_enable=True, drain_empty_dir=True, drain_selector=parse_selector("tier!=web")
    )
    run(world, policy)
    assert [p.name for p in world.nodes["gpu-00"].pods] == ["web"]


def test_an_undeletable_gpu_pod_without_drain_fails_the_node_naming_the_pod() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].pods = [gpu_pod("bare", controlled=False)]
    run(world, UpgradePolicy())
    node = world.nodes["gpu-00"]
    assert world.state("gpu-00") == UPGRADE_FAILED
    assert node.annotations[FAILURE] == ("pod deletion: default/bare has no controller (set force)")
    assert node.unschedulable
    assert ("gpu-00", "Warning") in {(n, t) for n, t, _ in world.events}


def test_wait_for_completion_holds_until_the_jobs_finish_or_time_out() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].pods = [gpu_pod("job", gpu=False, labels={"app": "job"})]
    policy = UpgradePolicy(wait_selector=parse_selector("app=job"), wait_timeout_s=100)
    history = run(world, policy, dt=10.0)
    waits = sum(h["gpu-00"] == "wait-for-jobs-required" for h in history)
    assert 10 <= waits <= 12
    assert world.state("gpu-00") == UPGRADE_DONE


def test_failed_validation_fails_the_node_and_relabelling_recovers_it() -> None:
    world = World.of(10)
    world.generation = 2
    world.nodes["gpu-03"].fails_validation = True
    policy = UpgradePolicy(max_parallel=2, max_unavailable="25%", validation_timeout_s=60)
    run(world, policy)
    states = world.states()
    assert states.pop("gpu-03") == UPGRADE_FAILED
    assert set(states.values()) == {UPGRADE_DONE}
    failed = world.nodes["gpu-03"]
    assert failed.unschedulable
    assert failed.annotations[FAILURE].startswith("validation: not ready after 60s")
    assert "nvidia-operator-validator pod is not Ready" in failed.annotations[FAILURE]
    # the user fixes the node and relabels it
    failed.fails_validation = False
    failed.labels[STATE_LABEL] = UPGRADE_REQUIRED
    run(world, policy)
    assert world.state("gpu-03") == UPGRADE_DONE
    assert not failed.unschedulable
    assert FAILURE not in failed.annotations


def test_a_failed_node_that_validates_by_itself_is_uncordoned_not_silently_done() -> None:
    world = World.of(1)
    world.generation = 2
    world.nodes["gpu-00"].fails_validation = True
    run(world, UpgradePolicy(validation_timeout_s=30))
    world.nodes["gpu-00"].fails_validation = False
    history = run(world, UpgradePolicy())
    assert [h["gpu-00"] for h in history[:2]] == ["uncordon-required", "upgrade-done"]


def test_the_upgrade_requested_annotation_starts_an_upgrade_on_a_done_node() -> None:
    world = World.of(1)
    run(world, UpgradePolicy())
    world.nodes["gpu-00"].annotations[UPGRADE_REQUESTED] = "true"
    history = run(world, UpgradePolicy())
    assert history[0]["gpu-00"] == UPGRADE_REQUIRED
    assert world.state("gpu-00") == UPGRADE_DONE
    assert UPGRADE_REQUESTED not in world.nodes["gpu-00"].annotations


def test_auto_upgrade_off_strips_the_state_labels() -> None:
    world = World.of(2)
    run(world, UpgradePolicy())
    run(world, UpgradePolicy(auto_upgrade=False))
    assert world.states() == {"gpu-00": "", "gpu-01": ""}


def test_metrics_count_pending_in_progress_done_failed_and_available_slots() -> None:
    world = World.of(10)
    run(world, UpgradePolicy())
    world.generation = 2
    world.nodes["gpu-09"].labels[STATE_LABEL] = UPGRADE_FAILED
    world.nodes["gpu-09"].unschedulable = True
    policy = UpgradePolicy(max_parallel=2, max_unavailable="25%")
    world.apply(plan(world.view(), policy, 0))  # done -> upgrade-required
    step = plan(world.view(), policy, 0)
    assert step.metrics.pending == 9
    assert step.metrics.failed == 1
    assert step.metrics.done == 0
    assert step.metrics.available == 1  # parallel 2 - 1 failed; unavailable 3 - 1
    world.apply(step)
    assert plan(world.view(), policy, 0).metrics.in_progress == 1


def test_every_event_has_the_upstream_reason() -> None:
    world = World.of(1)
    world.generation = 2
    step = plan(world.view(), UpgradePolicy(), 0)
    assert {a.reason for a in step.actions if isinstance(a, Emit)} == {EVENT_REASON}


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 12),
    parallel=st.integers(0, 4),
    budget=st.one_of(st.integers(1, 5), st.integers(1, 100).map(lambda p: f"{p}%")),
    cordoned=st.sets(st.integers(0, 11), max_size=4),
    with_pods=st.sets(st.integers(0, 11), max_size=6),
    failing=st.sets(st.integers(0, 11), max_size=2),
)
def test_limits_are_never_exceeded_and_every_node_reaches_done(
    count: int,
    parallel: int,
    budget: int | str,
    cordoned: set[int],
    with_pods: set[int],
    failing: set[int],
) -> None:
    world = World.of(count)
    names = sorted(world.nodes)
    for i in cordoned & set(range(count)):
        world.nodes[names[i]].unschedulable = True
    for i in with_pods & set(range(count)):
        world.nodes[names[i]].pods = [gpu_pod(f"job-{i}")]
    run(world, UpgradePolicy())  # classify: all done
    failing_names = {names[i] for i in failing if i < count}
    for name in failing_names:
        world.nodes[name].fails_validation = True
    world.generation = 2
    policy = UpgradePolicy(max_parallel=parallel, max_unavailable=budget, validation_timeout_s=60)
    limit = resolve_max_unavailable(budget, count)
    initially_down = sum(unavailable(v) for v in world.view())
    now = 0.0
    for _ in range(40 * count + 20):
        step = plan(world.view(), policy, now)
        world.apply(step)
        views = world.view()
        in_progress = sum(v.labels.get(STATE_LABEL) in IN_PROGRESS for v in views)
        if parallel:
            assert in_progress <= parallel
        assert sum(unavailable(v) for v in views) <= max(limit, initially_down)
        world.kubelet()
        if step.empty and not in_progress:
            break
        now += 5
    # Nothing moves any more: every node is done, failed (cordoned, reason given) or waiting —
    # and nodes only wait when the step says why.
    states = world.states()
    for name, state in states.items():
        assert state in (UPGRADE_DONE, UPGRADE_FAILED, UPGRADE_REQUIRED)
        if state == UPGRADE_FAILED:
            assert name in failing_names
            assert world.nodes[name].unschedulable
            assert FAILURE in world.nodes[name].annotations
        if state == UPGRADE_DONE:
            assert world.nodes[name].restarts == 1
            assert world.nodes[name].unschedulable == (names.index(name) in cordoned)
    if UPGRADE_REQUIRED in states.values():
        assert plan(world.view(), policy, now).blocked
    cordoned_names = {names[i] for i in cordoned if i < count}
    if not failing_names and (limit > len(cordoned_names) or len(cordoned_names) == count):
        assert set(states.values()) == {UPGRADE_DONE}


def test_a_budget_used_up_by_cordoned_nodes_is_reported_not_silent() -> None:
    world = World.of(4)
    run(world, UpgradePolicy())
    world.generation = 2
    world.nodes["gpu-00"].unschedulable = True
    world.nodes["gpu-01"].unschedulable = True
    policy = UpgradePolicy(max_parallel=1, max_unavailable=1)
    run(world, policy)
    step = plan(world.view(), policy, 0)
    assert step.blocked == (
        "2 node(s) wait for a driver upgrade: maxUnavailable allows 1 of 4 and these are "
        "unavailable (cordoned, NotReady or failed): gpu-00, gpu-01"
    )


def test_a_failed_node_holding_the_only_slot_stalls_the_rollout_and_says_so() -> None:
    world = World.of(3)
    run(world, UpgradePolicy())
    world.generation = 2
    world.nodes["gpu-00"].fails_validation = True
    policy = UpgradePolicy(max_parallel=1, max_unavailable="100%", validation_timeout_s=30)
    run(world, policy)
    assert world.states() == {
        "gpu-00": UPGRADE_FAILED,
        "gpu-01": UPGRADE_REQUIRED,
        "gpu-02": UPGRADE_REQUIRED,
    }
    assert plan(world.view(), policy, 0).blocked == (
        "2 node(s) wait for a driver upgrade: failed node(s) hold upgrade slots: gpu-00 (fix "
        "them and relabel nvidia.com/gpu-driver-upgrade-state=upgrade-required); "
        "maxParallelUpgrades is 1"
    )


def test_a_driver_pod_waiting_for_a_safe_load_walks_its_node_through_the_upgrade() -> None:
    world = World.of(1)
    run(world, UpgradePolicy())
    world.nodes["gpu-00"].annotations[WAIT_FOR_SAFE_LOAD] = "true"
    history = run(world, UpgradePolicy())
    assert history[0]["gpu-00"] == UPGRADE_REQUIRED
    assert world.state("gpu-00") == UPGRADE_DONE
    assert WAIT_FOR_SAFE_LOAD not in world.nodes["gpu-00"].annotations
