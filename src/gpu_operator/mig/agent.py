"""The MIG manager's pure core: upstream's node-label protocol as a state machine.

``step(state, event) -> (state, actions)``: the node agent feeds events (the node's labels
were seen, a check or an apply finished, pods left or not, time passed) and performs the
actions it gets back, in order (set labels, wait for pods, apply, reboot, report a failure,
schedule a retry). No I/O here, so every path is tested directly.

The protocol (mig.md §4), with what we add so a node is never wedged (upstream #2833):

- the config named by the node's MIG config label (``names.MIG_CONFIG_LABEL``) is validated;
  an unknown one → ``failed``,
  deploy labels untouched; an applied one → ``success`` and nothing else changes (no label
  flips: no pod is disturbed);
- otherwise ``pending``; the operands' deploy labels (``names.DEPLOY_LABEL_PREFIX``) go to
  ``paused-for-mig-change``
  (``false`` stays ``false``, absent stays absent); the clients' pods get a bounded wait; apply;
  the labels go back to what they were; the validator pod is deleted; ``success``;
- on any failure the labels are restored FIRST, then ``failed``, an Event and a node annotation
  with the reason, and a retry with exponential backoff (no label change needed);
- GPUs that must change but run compute processes (a user's job holding a MIG device) fail the
  check before anything is paused, naming the processes and their pods; the agent then retries
  as soon as those GPUs are idle (``GpusIdle``), not only on the backoff timer;
- with ``WITH_REBOOT``, a mode change that needs a reboot → ``rebooting`` and a reboot; after it,
  a mode that still did not take effect is a failure, not another reboot;
- an agent restarted mid-apply finds paused labels and puts them back on its way to the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gpu_operator.names import DEPLOY_LABEL_PREFIX, MIG_CONFIG_LABEL, MIG_CONFIG_STATE_LABEL

CONFIG_LABEL = MIG_CONFIG_LABEL
STATE_LABEL = MIG_CONFIG_STATE_LABEL
PAUSED = "paused-for-mig-change"
DEPLOY_LABELS = tuple(
    f"{DEPLOY_LABEL_PREFIX}{c}"
    for c in ("device-plugin", "gpu-feature-discovery", "dcgm-exporter", "dcgm", "nvsm", "client")
)
FAILURE_ANNOTATION = "gpu-operator.nvidia.com/mig-config-failure"
"""Ours (upstream has none): why the last attempt failed; removed on success."""


class Phase(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    WAITING_FOR_PODS = "waiting-for-pods"
    APPLYING = "applying"
    REBOOTING = "rebooting"
    FAILED = "failed"


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSeen:
    """The node as the watch shows it now."""

    now: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checked:
    """``assert --valid-config``, ``assert`` and ``assert --mode-only`` of the config."""

    now: float
    valid: bool
    applied: bool = False
    mode_applied: bool = False
    reason: str = ""
    in_use: str = ""
    """Why GPUs the config would change are busy (empty: idle); only asked when not applied."""


@dataclass(frozen=True)
class PodsLeft:
    """The GPU clients' pods still on the node (empty: all gone)."""

    now: float
    remaining: tuple[str, ...]


@dataclass(frozen=True)
class Applied:
    now: float
    ok: bool
    reason: str = ""
    reboot_needed: bool = False
    """The MIG mode did not take effect without a reboot (reset not possible)."""
    in_use: bool = False
    """Refused because processes started on the GPUs after the check."""


@dataclass(frozen=True)
class Tick:
    now: float


@dataclass(frozen=True)
class GpusIdle:
    """The GPUs a failed config would change run no compute process any more."""

    now: float


Event = NodeSeen | Checked | PodsLeft | Applied | Tick | GpusIdle


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SetLabels:
    """Patch node labels; ``None`` removes one."""

    labels: dict[str, str | None]


@dataclass(frozen=True)
class Check:
    config: str


@dataclass(frozen=True)
class WaitForPods:
    """Look again (or watch) until ``deadline`` for the clients' pods to leave."""

    deadline: float


@dataclass(frozen=True)
class Apply:
    config: str


@dataclass(frozen=True)
class Reboot:
    """Reboot the node (``chroot /host reboot``); the agent restarts after it."""


@dataclass(frozen=True)
class DeleteValidatorPods:
    """Delete the ``app=nvidia-operator-validator`` pod on this node (validation reruns)."""


@dataclass(frozen=True)
class ReportFailure:
    """Post a Warning Event and set ``FAILURE_ANNOTATION`` to ``reason``."""

    config: str
    reason: str


@dataclass(frozen=True)
class ClearFailure:
    """Remove ``FAILURE_ANNOTATION`` from the node."""


@dataclass(frozen=True)
class RetryAt:
    when: float


Action = (
    SetLabels
    | Check
    | WaitForPods
    | Apply
    | Reboot
    | DeleteValidatorPods
    | ReportFailure
    | ClearFailure
    | RetryAt
)


# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The agent's knobs, each with its unit and the upstream env var where there is one."""

    with_reboot: bool = False
    """``WITH_REBOOT``: reboot the node when a mode change needs it."""
    pod_wait_s: float = 300.0
    """Upstream waits 5 min for each client's pods; we bound the whole wait by this."""
    retry_base_s: float = 30.0
    retry_max_s: float = 600.0


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.IDLE
    config: str = ""
    """The config being (or last) worked on."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The node's labels when last seen."""
    saved: Mapping[str, str] = field(default_factory=dict)
    """Deploy labels as they were before we paused them."""
    attempt: int = 0
    deadline: float = 0.0
    """When the wait for the clients' pods gives up."""
    retry_at: float | None = None
    failed_reason: str = ""
    has_failure_annotation: bool = False
    waits_for_idle: bool = False
    """Failed because GPUs were in use: retry when ``GpusIdle`` comes."""


def paused(labels: Mapping[str, str]) -> dict[str, str | None]:
    """The deploy labels to pause: ``false`` stays ``false``, absent stays absent."""
    return {k: PAUSED for k in DEPLOY_LABELS if k in labels and labels[k] not in ("false", PAUSED)}


def restored(labels: Mapping[str, str], saved: Mapping[str, str]) -> dict[str, str | None]:
    """Paused labels back to what they were (``true`` when an earlier run paused them)."""
    return {k: saved.get(k, "true") for k in DEPLOY_LABELS if labels.get(k) == PAUSED}


def backoff(settings: Settings, attempt: int) -> float:
    return float(min(settings.retry_max_s, settings.retry_base_s * 2 ** max(0, attempt - 1)))


def _fail(
    state: State, settings: Settings, now: float, reason: str, *, in_use: bool = False
) -> tuple[State, list[Action]]:
    """Restore the labels first, then ``failed`` + report + retry (on the backoff timer, and
    when ``in_use`` also as soon as the GPUs are idle)."""
    attempt = state.attempt + 1
    when = now + backoff(settings, attempt)
    actions: list[Action] = []
    restore = restored(state.labels, state.saved)
    if restore:
        actions.append(SetLabels(restore))
    actions += [
        SetLabels({STATE_LABEL: "failed"}),
        ReportFailure(state.config, reason),
        RetryAt(when),
    ]
    labels = {**state.labels, **{k: v for k, v in restore.items() if v is not None}}
    labels[STATE_LABEL] = "failed"
    new = dataclasses.replace(
        state,
        phase=Phase.FAILED,
        labels=labels,
        saved={},
        attempt=attempt,
        retry_at=when,
        failed_reason=reason,
        has_failure_annotation=True,
        waits_for_idle=in_use,
    )
    return new, actions


def _start(state: State, event: NodeSeen, config: str) -> tuple[State, list[Action]]:
    attempt = state.attempt if config == state.config else 0
    new = dataclasses.replace(
        state,
        phase=Phase.CHECKING,
        config=config,
        labels=dict(event.labels),
        attempt=attempt,
        waits_for_idle=False,
    )
    return new, [Check(config)]


def step(state: State, event: Event, settings: Settings) -> tuple[State, list[Action]]:
    """One transition of the protocol."""
    if isinstance(event, NodeSeen):
        config = event.labels.get(CONFIG_LABEL, "")
        has_annotation = FAILURE_ANNOTATION in event.annotations
        state = dataclasses.replace(state, has_failure_annotation=has_annotation)
        busy = state.phase in (Phase.CHECKING, Phase.WAITING_FOR_PODS, Phase.APPLYING)
        if busy:
            # Keep working; a new name is picked up when this run ends (labels seen again).
            return dataclasses.replace(state, labels={**event.labels, **_ours(state)}), []
        if not config:
            return dataclasses.replace(state, labels=dict(event.labels)), []
        if state.phase is Phase.REBOOTING:
            return state, []  # the node goes down; the agent that starts after it checks
        if state.phase is Phase.IDLE or config != state.config:
            return _start(state, event, config)
        return dataclasses.replace(state, labels=dict(event.labels)), []

    if isinstance(event, Tick):
        due = state.retry_at is not None and event.now >= state.retry_at
        if state.phase is Phase.FAILED and due:
            new = dataclasses.replace(
                state, phase=Phase.CHECKING, retry_at=None, waits_for_idle=False
            )
            return new, [Check(state.config)]
        return state, []

    if isinstance(event, GpusIdle):
        if state.phase is Phase.FAILED and state.waits_for_idle:
            new = dataclasses.replace(
                state, phase=Phase.CHECKING, retry_at=None, waits_for_idle=False
            )
            return new, [Check(state.config)]
        return state, []

    if isinstance(event, Checked) and state.phase is Phase.CHECKING:
        return _checked(state, event, settings)

    if isinstance(event, PodsLeft) and state.phase is Phase.WAITING_FOR_PODS:
        if not event.remaining:
            return dataclasses.replace(state, phase=Phase.APPLYING), [Apply(state.config)]
        deadline = state.deadline
        if event.now >= deadline:
            pods = ", ".join(event.remaining)
            return _fail(
                state,
                settings,
                event.now,
                f"timed out after {settings.pod_wait_s:.0f}s waiting for GPU client pods to "
                f"leave the node: {pods}",
            )
        return state, [WaitForPods(deadline)]

    if isinstance(event, Applied) and state.phase is Phase.APPLYING:
        if event.ok:
            return _succeed(state, reconfigured=True)
        if event.reboot_needed and settings.with_reboot:
            labels = {**state.labels, STATE_LABEL: "rebooting"}
            new = dataclasses.replace(state, phase=Phase.REBOOTING, labels=labels)
            return new, [SetLabels({STATE_LABEL: "rebooting"}), Reboot()]
        reason = event.reason or "applying the config failed"
        return _fail(state, settings, event.now, reason, in_use=event.in_use)

    return state, []  # an answer to a question no longer asked


def _ours(state: State) -> dict[str, str]:
    """Labels we set during a run, which a stale watch event must not undo in our memory."""
    return {k: v for k, v in state.labels.items() if k == STATE_LABEL or v == PAUSED}


def _checked(state: State, event: Checked, settings: Settings) -> tuple[State, list[Action]]:
    if not event.valid:
        # Labels untouched: a config that does not exist fails without pausing anything.
        reason = event.reason or f"config {state.config!r} is not valid"
        actions: list[Action] = []
        restore = restored(state.labels, state.saved)
        if restore:
            actions.append(SetLabels(restore))
        actions += [SetLabels({STATE_LABEL: "failed"}), ReportFailure(state.config, reason)]
        labels = {**state.labels, STATE_LABEL: "failed"}
        new = dataclasses.replace(
            state,
            phase=Phase.FAILED,
            labels=labels,
            retry_at=None,
            failed_reason=reason,
            has_failure_annotation=True,
        )
        return new, actions
    if event.applied:
        return _succeed(state)
    if event.in_use:
        return _fail(state, settings, event.now, event.in_use, in_use=True)
    if state.labels.get(STATE_LABEL) == "rebooting" and not event.mode_applied:
        return _fail(
            state, settings, event.now, "the MIG mode change did not take effect after rebooting"
        )
    pause = paused(state.labels)
    saved = {k: state.labels[k] for k in pause} or dict(state.saved)
    labels = {**state.labels, **{k: v for k, v in pause.items() if v}, STATE_LABEL: "pending"}
    deadline = event.now + settings.pod_wait_s
    new = dataclasses.replace(
        state, phase=Phase.WAITING_FOR_PODS, labels=labels, saved=saved, deadline=deadline
    )
    return new, [SetLabels({STATE_LABEL: "pending", **pause}), WaitForPods(deadline)]


def _succeed(state: State, *, reconfigured: bool = False) -> tuple[State, list[Action]]:
    """Put back what we paused; mark success — touching nothing that is already right. After
    a reconfiguration the validator pod is deleted so validation runs again."""
    restore = restored(state.labels, state.saved)
    changes: dict[str, str | None] = dict(restore)
    if state.labels.get(STATE_LABEL) != "success":
        changes[STATE_LABEL] = "success"
    actions: list[Action] = []
    if reconfigured:
        actions.append(DeleteValidatorPods())
    if changes:
        actions.insert(0, SetLabels(changes))
    if state.has_failure_annotation:
        actions.append(ClearFailure())
    labels = {**state.labels, **{k: v for k, v in changes.items() if v is not None}}
    new = dataclasses.replace(
        state,
        phase=Phase.IDLE,
        labels=labels,
        saved={},
        attempt=0,
        retry_at=None,
        failed_reason="",
        has_failure_annotation=False,
        waits_for_idle=False,
    )
    return new, actions
