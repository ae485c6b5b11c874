"""The driver upgrade controller's pure core (reference §5): from the managed nodes as they are
now, the policy and the time, one ``UpgradeStep`` — what to write (state labels, annotations,
cordons), which pods to delete or evict, which driver pods to restart, the Events to post and the
``gpu_operator_nodes_upgrades_*`` values. The shell (``driver.upgrading``) does the I/O and calls
again; each call moves each node at most one state, so every transition is observed.

States, in order (label ``nvidia.com/gpu-driver-upgrade-state``): ``upgrade-required`` →
``cordon-required`` → ``wait-for-jobs-required`` → ``pod-deletion-required`` →
(``drain-required`` only when pod deletion failed and ``drain.enable``) → ``pod-restart-required``
→ ``validation-required`` → ``uncordon-required`` → ``upgrade-done``; any failure →
``upgrade-failed`` (node stays cordoned, reason in an annotation and a Warning Event).

Limits: a node starts only while ``in progress < maxParallelUpgrades`` (0: no limit) and
``unavailable < maxUnavailable`` (a percentage of the managed nodes, rounded up); unavailable
counts nodes already cordoned or NotReady, in progress or failed. A node that is already
unavailable may start without using the unavailable budget (as upstream).

Beyond upstream: ``upgrade-failed`` leaves only when the user relabels ``upgrade-required``
(recovery), or when validation passes by itself — then it is uncordoned, never silently marked
done (#2549); the failure reason is on the node; every wait but ``waitForCompletion`` (0 = wait
for the jobs, as upstream) is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpu_operator.driver.upgrade_actions import (
    EVENT_REASON,
    Action,
    Annotate,
    Cordon,
    DeletePods,
    Emit,
    EvictPods,
    RestartDriver,
    SetState,
    UpgradeMetrics,
    UpgradeStep,
)
from gpu_operator.driver.upgrade_model import (
    DRAIN_SKIP_LABEL,
    DRAIN_START,
    FAILURE,
    INITIAL_UNSCHEDULABLE,
    POD_DELETION_START,
    SKIP_LABEL,
    STATE_LABEL,
    UPGRADE_REQUESTED,
    VALIDATION_START,
    WAIT_FOR_SAFE_LOAD,
    WAIT_START,
    NodeView,
    PodView,
    UpgradePolicy,
)

UNKNOWN = ""
UPGRADE_REQUIRED = "upgrade-required"
CORDON_REQUIRED = "cordon-required"
WAIT_FOR_JOBS_REQUIRED = "wait-for-jobs-required"
POD_DELETION_REQUIRED = "pod-deletion-required"
DRAIN_REQUIRED = "drain-required"
POD_RESTART_REQUIRED = "pod-restart-required"
VALIDATION_REQUIRED = "validation-required"
UNCORDON_REQUIRED = "uncordon-required"
UPGRADE_DONE = "upgrade-done"
UPGRADE_FAILED = "upgrade-failed"
NODE_MAINTENANCE_REQUIRED = "node-maintenance-required"
POST_MAINTENANCE_REQUIRED = "post-maintenance-required"

IN_PROGRESS = (
    CORDON_REQUIRED,
    WAIT_FOR_JOBS_REQUIRED,
    POD_DELETION_REQUIRED,
    DRAIN_REQUIRED,
    POD_RESTART_REQUIRED,
    VALIDATION_REQUIRED,
    UNCORDON_REQUIRED,
    NODE_MAINTENANCE_REQUIRED,
    POST_MAINTENANCE_REQUIRED,
)
STATES = (UPGRADE_REQUIRED, *IN_PROGRESS, UPGRADE_DONE, UPGRADE_FAILED)
__all__ = [
    "EVENT_REASON",
    "Action",
    "Annotate",
    "Cordon",
    "DeletePods",
    "Emit",
    "EvictPods",
    "RestartDriver",
    "SetState",
    "UpgradeMetrics",
    "UpgradeStep",
    "disabled",
    "plan",
    "state_of",
    "unavailable",
]


# --- the core ----------------------------------------------------------------------------


def state_of(node: NodeView) -> str:
    return node.labels.get(STATE_LABEL, UNKNOWN)


def unavailable(node: NodeView) -> bool:
    """Counts against ``maxUnavailable``: cordoned, NotReady, or being (or failed being)
    upgraded — a node admitted this pass counts before it is cordoned."""
    state = state_of(node)
    return node.unschedulable or not node.ready or state in IN_PROGRESS or state == UPGRADE_FAILED


def _busy(node: NodeView) -> bool:
    return state_of(node) in IN_PROGRESS or state_of(node) == UPGRADE_FAILED


def _move(node: NodeView, state: str, *extra: Action) -> list[Action]:
    return [
        *extra,
        SetState(node.name, state),
        Emit(node.name, f"Successfully updated node state label to {state}"),
    ]


def _fail(node: NodeView, reason: str) -> list[Action]:
    cleanup: dict[str, str | None] = {
        k: None
        for k in (WAIT_START, POD_DELETION_START, DRAIN_START, VALIDATION_START)
        if k in node.annotations
    }
    return [
        Annotate(node.name, {**cleanup, FAILURE: reason[:1000]}),
        SetState(node.name, UPGRADE_FAILED),
        Emit(node.name, f"Driver upgrade failed: {reason}", "Warning"),
    ]


def _elapsed(node: NodeView, key: str, now: float) -> float | None:
    """Seconds since the start time in annotation ``key``; ``None`` when it is not set (or not a
    number, which restarts the clock)."""
    text = node.annotations.get(key, "")
    return now - int(text) if text.isdigit() else None


def _timed(node: NodeView, key: str, now: float, timeout_s: int) -> tuple[list[Action], bool]:
    """Start the clock in ``key`` when not started; ``True`` when ``timeout_s`` (> 0) ran out."""
    elapsed = _elapsed(node, key, now)
    if elapsed is None:
        return [Annotate(node.name, {key: str(int(now))})], False
    return [], timeout_s > 0 and elapsed >= timeout_s


def _clear(node: NodeView, *keys: str) -> list[Action]:
    present = {k: None for k in keys if k in node.annotations}
    return [Annotate(node.name, present)] if present else []


def _blockers(pods: Iterable[PodView], *, empty_dir_ok: bool, force: bool) -> list[str]:
    reasons = []
    for pod in pods:
        if pod.empty_dir and not empty_dir_ok:
            reasons.append(f"{pod.ref} uses emptyDir (set deleteEmptyDir)")
        if not pod.controlled and not force:
            reasons.append(f"{pod.ref} has no controller (set force)")
    return reasons


def _pod_deletion(node: NodeView, policy: UpgradePolicy, now: float) -> list[Action]:
    gpu = [p for p in node.pods if p.gpu and not p.finished]
    if not gpu:
        return _move(node, POD_RESTART_REQUIRED, *_clear(node, POD_DELETION_START))
    blocked = _blockers(
        gpu, empty_dir_ok=policy.pod_deletion_empty_dir, force=policy.pod_deletion_force
    )
    started, expired = _timed(node, POD_DELETION_START, now, policy.pod_deletion_timeout_s)
    if expired:
        blocked.append(
            f"GPU pods still running after {policy.pod_deletion_timeout_s}s: "
            + ", ".join(p.ref for p in gpu)
        )
    if blocked:
        if policy.drain_enable:
            return _move(node, DRAIN_REQUIRED, *_clear(node, POD_DELETION_START))
        return _fail(node, "pod deletion: " + "; ".join(blocked))
    return [*started, DeletePods(node.name, tuple(p.ref for p in gpu))]


def _drain(node: NodeView, policy: UpgradePolicy, now: float) -> list[Action]:
    if not policy.drain_enable:
        return _move(node, POD_RESTART_REQUIRED)
    pods = [
        p
        for p in node.pods
        if not p.daemonset
        and not p.finished
        and p.labels.get(DRAIN_SKIP_LABEL) != "true"
        and policy.drain_selector.matches(p.labels)
    ]
    if not pods:
        return _move(node, POD_RESTART_REQUIRED, *_clear(node, DRAIN_START))
    blocked = _blockers(pods, empty_dir_ok=policy.drain_empty_dir, force=policy.drain_force)
    if blocked:
        return _fail(node, "drain: " + "; ".join(blocked))
    started, expired = _timed(node, DRAIN_START, now, policy.drain_timeout_s)
    if expired:
        names = ", ".join(p.ref for p in pods)
        return _fail(
            node, f"drain: pods still on the node after {policy.drain_timeout_s}s: {names}"
        )
    return [*started, EvictPods(node.name, tuple(p.ref for p in pods))]


def _validation_gaps(node: NodeView) -> list[str]:
    gaps = []
    if node.driver is None:
        gaps.append("no driver pod")
    elif not node.driver.current:
        gaps.append(f"driver pod {node.driver.name} runs an old template")
    elif not node.driver.ready:
        gaps.append(f"driver pod {node.driver.name} is not Ready")
    if not node.validator_ready:
        gaps.append("nvidia-operator-validator pod is not Ready")
    return gaps


def _advance(node: NodeView, policy: UpgradePolicy, now: float) -> list[Action]:
    """One step for a node that is in progress (or failed)."""
    state = state_of(node)
    if state == CORDON_REQUIRED:
        cordon = [] if node.unschedulable else [Cordon(node.name)]
        return _move(node, WAIT_FOR_JOBS_REQUIRED, *cordon)
    if state == WAIT_FOR_JOBS_REQUIRED:
        selector = policy.wait_selector
        jobs = [p for p in node.pods if selector and selector.matches(p.labels) and not p.finished]
        if jobs:
            started, expired = _timed(node, WAIT_START, now, policy.wait_timeout_s)
            if not expired:
                return started
        return _move(node, POD_DELETION_REQUIRED, *_clear(node, WAIT_START))
    if state == POD_DELETION_REQUIRED:
        return _pod_deletion(node, policy, now)
    if state == DRAIN_REQUIRED:
        return _drain(node, policy, now)
    if state == POD_RESTART_REQUIRED:
        if node.driver is None:
            return []  # the DaemonSet controller is bringing the new pod up
        if not node.driver.current:
            return [RestartDriver(node.name, f"{node.driver.namespace}/{node.driver.name}")]
        return _move(node, VALIDATION_REQUIRED, *_clear(node, WAIT_FOR_SAFE_LOAD))
    if state == VALIDATION_REQUIRED:
        gaps = _validation_gaps(node)
        if not gaps:
            return _move(node, UNCORDON_REQUIRED, *_clear(node, VALIDATION_START))
        started, expired = _timed(node, VALIDATION_START, now, policy.validation_timeout_s)
        if expired:
            return _fail(
                node,
                f"validation: not ready after {policy.validation_timeout_s}s: " + "; ".join(gaps),
            )
        return started
    if state == UNCORDON_REQUIRED:
        initially = node.annotations.get(INITIAL_UNSCHEDULABLE) == "true"
        extra: list[Action] = _clear(node, INITIAL_UNSCHEDULABLE, FAILURE)
        if node.unschedulable and not initially:
            extra.insert(0, Cordon(node.name, unschedulable=False))
        return _move(node, UPGRADE_DONE, *extra)
    if state == UPGRADE_FAILED and not _validation_gaps(node):
        return _move(node, UNCORDON_REQUIRED)
    return []  # failed (waits for the user), maintenance states (requestor mode: not ours)


def _classify(node: NodeView) -> list[Action]:
    """Nodes not in progress: find out whether they need an upgrade."""
    state = state_of(node)
    if node.driver is None:
        return []
    requested = node.annotations.get(UPGRADE_REQUESTED) == "true"
    if requested:
        return _move(node, UPGRADE_REQUIRED, Annotate(node.name, {UPGRADE_REQUESTED: None}))
    if node.annotations.get(WAIT_FOR_SAFE_LOAD):
        # a driver pod started outside an upgrade waits to load safely: walk the node through
        return _move(node, UPGRADE_REQUIRED)
    if state == UNKNOWN:
        return _move(node, UPGRADE_DONE if node.driver.current else UPGRADE_REQUIRED)
    if state == UPGRADE_DONE and not node.driver.current:
        return _move(node, UPGRADE_REQUIRED)
    return []


def _why_blocked(
    managed: list[NodeView], waiting: list[NodeView], policy: UpgradePolicy, limit: int
) -> str:
    """Nodes wait and nothing moves: name what holds the slots, so nobody waits for weeks."""
    failed = [n.name for n in managed if state_of(n) == UPGRADE_FAILED]
    down = [n.name for n in managed if unavailable(n)]
    reasons = []
    if failed:
        reasons.append(
            f"failed node(s) hold upgrade slots: {', '.join(failed)} (fix them and relabel "
            f"{STATE_LABEL}=upgrade-required)"
        )
    if policy.max_parallel and len(failed) >= policy.max_parallel:
        reasons.append(f"maxParallelUpgrades is {policy.max_parallel}")
    if len(down) >= limit:
        reasons.append(
            f"maxUnavailable allows {limit} of {len(managed)} and these are unavailable "
            f"(cordoned, NotReady or failed): {', '.join(down)}"
        )
    return f"{len(waiting)} node(s) wait for a driver upgrade: " + "; ".join(reasons)


def disabled(nodes: Iterable[NodeView]) -> UpgradeStep:
    """``autoUpgrade: false``: the controller strips its state labels (as upstream) and leaves
    cordons alone — a node it cordoned is named in an Event."""
    actions: list[Action] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if STATE_LABEL in node.labels:
            actions.append(SetState(node.name, UNKNOWN))
            if node.unschedulable and state_of(node) in (*IN_PROGRESS, UPGRADE_FAILED):
                message = (
                    f"autoUpgrade turned off mid-upgrade ({state_of(node)}): node left cordoned"
                )
                actions.append(Emit(node.name, message, "Warning"))
    return UpgradeStep(tuple(actions))


def plan(nodes: Iterable[NodeView], policy: UpgradePolicy, now: float) -> UpgradeStep:
    """One pass over the managed nodes. Pure: same input, same step."""
    managed = sorted(nodes, key=lambda n: n.name)
    if not policy.auto_upgrade:
        return disabled(managed)
    total = len(managed)
    limit = policy.unavailable_limit(total)
    in_progress = sum(_busy(n) for n in managed)
    down = sum(unavailable(n) for n in managed)
    parallel_left = (policy.max_parallel - in_progress) if policy.max_parallel else total
    unavailable_left = limit - down
    actions: list[Action] = []
    waiting: list[NodeView] = []
    for node in managed:
        state = state_of(node)
        if state in IN_PROGRESS or state == UPGRADE_FAILED:
            actions += _advance(node, policy, now)
        elif state == UPGRADE_REQUIRED:
            if node.annotations.get(UPGRADE_REQUESTED) == "true":
                actions.append(Annotate(node.name, {UPGRADE_REQUESTED: None}))
            if node.labels.get(SKIP_LABEL) != "true":
                waiting.append(node)
        else:
            actions += _classify(node)
    available = max(0, min(parallel_left, unavailable_left))
    # Nodes already unavailable first: they start without taking from the unavailable budget.
    for node in sorted(waiting, key=lambda n: (not unavailable(n), n.name)):
        if parallel_left <= 0:
            break
        already_down = unavailable(node)
        if not already_down and unavailable_left <= 0:
            continue
        parallel_left -= 1
        unavailable_left -= 0 if already_down else 1
        # A failed node was cordoned by us; its first admission already recorded the truth.
        ours = FAILURE in node.annotations or INITIAL_UNSCHEDULABLE in node.annotations
        mark = {INITIAL_UNSCHEDULABLE: "true"} if node.unschedulable and not ours else {}
        annotate = [Annotate(node.name, mark)] if mark else []
        actions += _move(node, CORDON_REQUIRED, *annotate)
    states = [state_of(n) for n in managed]
    metrics = UpgradeMetrics(
        in_progress=sum(s in IN_PROGRESS for s in states),
        done=states.count(UPGRADE_DONE),
        failed=states.count(UPGRADE_FAILED),
        available=available,
        pending=states.count(UPGRADE_REQUIRED),
    )
    moving = any(state_of(n) in IN_PROGRESS for n in managed)
    started = any(isinstance(a, SetState) and a.state == CORDON_REQUIRED for a in actions)
    blocked = (
        None if moving or started or not waiting else _why_blocked(managed, waiting, policy, limit)
    )
    return UpgradeStep(tuple(actions), metrics, blocked)
