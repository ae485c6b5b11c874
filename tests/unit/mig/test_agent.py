"""The MIG manager's label protocol, driven event by event: success, already applied (no label
flips), unknown config, pods that never leave, apply failures, WITH_REBOOT, an agent restarted
mid-apply — and, for any sequence of events, never a node left paused once the agent is idle."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_operator.mig.agent import (
    CONFIG_LABEL,
    DEPLOY_LABELS,
    PAUSED,
    STATE_LABEL,
    Action,
    Applied,
    Apply,
    Check,
    Checked,
    ClearFailure,
    DeleteValidatorPods,
    Event,
    GpusIdle,
    NodeSeen,
    Phase,
    PodsLeft,
    Reboot,
    ReportFailure,
    RetryAt,
    SetLabels,
    Settings,
    State,
    Tick,
    WaitForPods,
    step,
)

PLUGIN, GFD, DCGM_EXPORTER, DCGM, NVSM, CLIENT = DEPLOY_LABELS
SETTINGS = Settings()


def node_labels(config: str = "all-balanced", **extra: str) -> dict[str, str]:
    return {
        CONFIG_LABEL: config,
        PLUGIN: "true",
        GFD: "true",
        DCGM_EXPORTER: "false",  # the user turned the exporter off: it must stay off
        **extra,
    }


class Node:
    """Runs the core like the agent does, keeping the node's labels as the API would."""

    def __init__(
        self, labels: dict[str, str], state: State | None = None, cfg: Settings = SETTINGS
    ):
        self.labels = dict(labels)
        self.state = state or State()
        self.settings = cfg
        self.log: list[Action] = []

    def feed(self, event: Event) -> list[Action]:
        self.state, actions = step(self.state, event, self.settings)
        for action in actions:
            if isinstance(action, SetLabels):
                for key, value in action.labels.items():
                    if value is None:
                        self.labels.pop(key, None)
                    else:
                        self.labels[key] = value
        self.log += actions
        return actions

    def seen(self, now: float = 0.0) -> list[Action]:
        return self.feed(NodeSeen(now, dict(self.labels)))


def test_an_applied_config_with_state_success_changes_nothing_at_all() -> None:
    node = Node(node_labels(**{STATE_LABEL: "success"}))
    assert node.seen() == [Check("all-balanced")]
    assert node.feed(Checked(1.0, valid=True, applied=True, mode_applied=True)) == []
    assert node.state.phase is Phase.IDLE


def test_an_applied_config_only_gets_its_state_label_set() -> None:
    node = Node(node_labels())
    node.seen()
    actions = node.feed(Checked(1.0, valid=True, applied=True, mode_applied=True))
    assert actions == [SetLabels({STATE_LABEL: "success"})]


def test_the_success_path_pauses_clients_waits_applies_restores_and_reports_success() -> None:
    original = node_labels()
    node = Node(original)
    node.seen(0.0)
    actions = node.feed(Checked(1.0, valid=True))
    assert actions == [
        SetLabels({STATE_LABEL: "pending", PLUGIN: PAUSED, GFD: PAUSED}),
        WaitForPods(301.0),
    ]
    assert node.labels[DCGM_EXPORTER] == "false", "false stays false"
    assert NVSM not in node.labels, "absent labels are not added"

    assert node.feed(PodsLeft(5.0, ("nvidia-device-plugin-daemonset-x",))) == [WaitForPods(301.0)]
    assert node.feed(PodsLeft(9.0, ())) == [Apply("all-balanced")]
    actions = node.feed(Applied(12.0, ok=True))
    assert actions == [
        SetLabels({PLUGIN: "true", GFD: "true", STATE_LABEL: "success"}),
        DeleteValidatorPods(),
    ]
    assert node.labels == {**original, STATE_LABEL: "success"}
    assert node.state.phase is Phase.IDLE


def test_an_unknown_config_fails_without_touching_the_deploy_labels_or_retrying() -> None:
    node = Node(node_labels("all-7g.999gb"))
    node.seen()
    actions = node.feed(Checked(1.0, valid=False, reason="no config named 'all-7g.999gb'"))
    assert actions == [
        SetLabels({STATE_LABEL: "failed"}),
        ReportFailure("all-7g.999gb", "no config named 'all-7g.999gb'"),
    ]
    assert node.labels[PLUGIN] == "true"
    assert node.feed(Tick(10_000.0)) == [], "a bad name only changes with the label"
    assert node.feed(NodeSeen(10_001.0, {**node.labels, CONFIG_LABEL: "all-balanced"})) == [
        Check("all-balanced")
    ]


def test_pods_that_never_leave_time_out_restore_labels_first_then_fail_and_retry() -> None:
    node = Node(node_labels())
    node.seen(0.0)
    node.feed(Checked(0.0, valid=True))
    actions = node.feed(PodsLeft(300.0, ("gpu-feature-discovery-abc",)))
    assert actions[0] == SetLabels({PLUGIN: "true", GFD: "true"}), "labels come back first"
    assert actions[1] == SetLabels({STATE_LABEL: "failed"})
    assert isinstance(actions[2], ReportFailure)
    assert "gpu-feature-discovery-abc" in actions[2].reason
    assert actions[3] == RetryAt(330.0)
    assert PAUSED not in node.labels.values()

    assert node.feed(Tick(329.0)) == []
    assert node.feed(Tick(330.0)) == [Check("all-balanced")], "retried without a label change"
    node.feed(Checked(331.0, valid=True))
    actions = node.feed(PodsLeft(631.0, ("gpu-feature-discovery-abc",)))
    assert actions[-1] == RetryAt(691.0), "the backoff doubles"


def test_a_failed_apply_restores_labels_before_reporting_failed() -> None:
    node = Node(node_labels())
    node.seen()
    node.feed(Checked(1.0, valid=True))
    node.feed(PodsLeft(2.0, ()))
    actions = node.feed(Applied(3.0, ok=False, reason="GPU 1: creating 3g.20gb@4 failed"))
    assert [type(a) for a in actions] == [SetLabels, SetLabels, ReportFailure, RetryAt]
    assert actions[0] == SetLabels({PLUGIN: "true", GFD: "true"})
    assert node.labels[STATE_LABEL] == "failed"


def test_with_reboot_a_mode_change_reboots_and_a_mode_still_wrong_afterwards_fails() -> None:
    node = Node(node_labels(), cfg=Settings(with_reboot=True))
    node.seen()
    node.feed(Checked(1.0, valid=True))
    node.feed(PodsLeft(2.0, ()))
    assert node.feed(Applied(3.0, ok=False, reboot_needed=True)) == [
        SetLabels({STATE_LABEL: "rebooting"}),
        Reboot(),
    ]
    assert node.labels[PLUGIN] == PAUSED, "clients stay paused across the reboot"
    assert node.seen(50.0) == [], "while the node goes down nothing else happens"

    after_reboot = Node(node.labels, cfg=Settings(with_reboot=True))  # a fresh agent
    after_reboot.seen(100.0)
    actions = after_reboot.feed(Checked(101.0, valid=True, applied=False, mode_applied=False))
    assert actions[0] == SetLabels({PLUGIN: "true", GFD: "true"})
    assert isinstance(actions[2], ReportFailure)
    assert "did not take effect after rebooting" in actions[2].reason
    assert Reboot() not in actions


def test_with_reboot_a_mode_that_took_effect_goes_on_to_apply_the_layout() -> None:
    labels = node_labels(**{STATE_LABEL: "rebooting", PLUGIN: PAUSED, GFD: PAUSED})
    node = Node(labels, cfg=Settings(with_reboot=True))
    node.seen()
    node.feed(Checked(1.0, valid=True, applied=False, mode_applied=True))
    node.feed(PodsLeft(2.0, ()))
    node.feed(Applied(3.0, ok=True))
    assert node.labels[PLUGIN] == "true"
    assert node.labels[STATE_LABEL] == "success"


def test_without_with_reboot_a_needed_reboot_is_a_failure() -> None:
    node = Node(node_labels())
    node.seen()
    node.feed(Checked(1.0, valid=True))
    node.feed(PodsLeft(2.0, ()))
    actions = node.feed(Applied(3.0, ok=False, reboot_needed=True, reason="reset not supported"))
    assert Reboot() not in actions
    assert node.labels[STATE_LABEL] == "failed"


def test_an_agent_restarted_mid_apply_puts_the_paused_labels_back() -> None:
    labels = node_labels(**{STATE_LABEL: "pending", PLUGIN: PAUSED, GFD: PAUSED})
    node = Node(labels)
    node.seen()
    actions = node.feed(Checked(1.0, valid=True, applied=True, mode_applied=True))
    assert actions == [SetLabels({PLUGIN: "true", GFD: "true", STATE_LABEL: "success"})]


def test_a_new_config_name_during_a_run_waits_for_the_run_to_end() -> None:
    node = Node(node_labels())
    node.seen()
    node.feed(Checked(1.0, valid=True))
    assert node.feed(NodeSeen(2.0, {**node.labels, CONFIG_LABEL: "all-1g.5gb"})) == []
    node.feed(PodsLeft(3.0, ()))
    node.feed(Applied(4.0, ok=True))
    assert node.labels[PLUGIN] == "true"
    assert node.feed(NodeSeen(5.0, {**node.labels, CONFIG_LABEL: "all-1g.5gb"})) == [
        Check("all-1g.5gb")
    ]


BUSY = "GPU 0 (NVIDIA A100-SXM4-40GB) is in use by pid 7 (pod default/train) on MIG 3g.20gb …"


def test_gpus_in_use_fail_the_check_without_pausing_anything_and_retry_once_they_are_idle() -> None:
    original = node_labels()
    node = Node(original)
    node.seen(0.0)
    actions = node.feed(Checked(1.0, valid=True, in_use=BUSY))
    assert actions == [
        SetLabels({STATE_LABEL: "failed"}),
        ReportFailure("all-balanced", BUSY),
        RetryAt(31.0),
    ]
    assert node.labels == {**original, STATE_LABEL: "failed"}, "no operand was paused"
    assert node.feed(Tick(2.0)) == []
    assert node.feed(GpusIdle(5.0)) == [Check("all-balanced")], "retried when the job ended"
    assert node.feed(Checked(6.0, valid=True))[0] == SetLabels(
        {STATE_LABEL: "pending", PLUGIN: PAUSED, GFD: PAUSED}
    )


def test_idle_gpus_do_not_retry_a_failure_that_was_not_about_gpus_in_use() -> None:
    node = Node(node_labels())
    node.seen()
    node.feed(Checked(1.0, valid=True))
    node.feed(PodsLeft(2.0, ()))
    node.feed(Applied(3.0, ok=False, reason="GPU 1: creating 3g.20gb@4 failed"))
    assert node.feed(GpusIdle(4.0)) == [], "only the backoff timer retries this one"


def test_a_job_that_starts_between_check_and_apply_also_waits_for_idle_gpus() -> None:
    node = Node(node_labels())
    node.seen()
    node.feed(Checked(1.0, valid=True))
    node.feed(PodsLeft(2.0, ()))
    actions = node.feed(Applied(3.0, ok=False, reason=BUSY, in_use=True))
    assert actions[0] == SetLabels({PLUGIN: "true", GFD: "true"}), "labels come back first"
    assert node.feed(GpusIdle(4.0)) == [Check("all-balanced")]


def test_success_after_a_failure_clears_the_failure_annotation() -> None:
    node = Node(node_labels())
    node.feed(NodeSeen(0.0, node.labels, {"gpu-operator.nvidia.com/mig-config-failure": "x"}))
    actions = node.feed(Checked(1.0, valid=True, applied=True))
    assert ClearFailure() in actions


def random_event(kind: str, now: float, node: Node, config: str) -> Event:
    if kind == "seen":
        return NodeSeen(now, {**node.labels, CONFIG_LABEL: config})
    if kind == "checked-valid":
        return Checked(now, valid=True)
    if kind == "checked-applied":
        return Checked(now, valid=True, applied=True, mode_applied=True)
    if kind == "checked-invalid":
        return Checked(now, valid=False, reason="bad")
    if kind == "pods-stay":
        return PodsLeft(now, ("pod",))
    if kind == "pods-gone":
        return PodsLeft(now, ())
    if kind == "apply-ok":
        return Applied(now, ok=True)
    if kind == "apply-fail":
        return Applied(now, ok=False, reason="boom")
    if kind == "checked-in-use":
        return Checked(now, valid=True, in_use="busy")
    if kind == "apply-in-use":
        return Applied(now, ok=False, reason="busy", in_use=True)
    if kind == "idle":
        return GpusIdle(now)
    return Tick(now)


KINDS = [
    "seen",
    "checked-valid",
    "checked-applied",
    "checked-invalid",
    "pods-stay",
    "pods-gone",
    "apply-ok",
    "apply-fail",
    "checked-in-use",
    "apply-in-use",
    "idle",
    "tick",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KINDS),
            st.floats(0, 400),
            st.sampled_from(["all-balanced", "all-1g.5gb"]),
        ),
        max_size=40,
    )
)
def test_whenever_the_agent_is_idle_or_failed_no_client_label_is_left_paused(
    events: Sequence[tuple[str, float, str]],
) -> None:
    node = Node(node_labels())
    now = 0.0
    for kind, delta, config in events:
        now += delta
        node.feed(random_event(kind, now, node, config))
        if node.state.phase in (Phase.IDLE, Phase.FAILED):
            assert PAUSED not in node.labels.values(), node.log
        if node.state.phase is Phase.WAITING_FOR_PODS:
            assert node.state.deadline <= now + SETTINGS.pod_wait_s, "every wait is bounded"
    assert node.labels[DCGM_EXPORTER] == "false"
