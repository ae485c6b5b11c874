"""The upgrade controller's thin shell: read the nodes, pods and driver DaemonSets, run one pure
``upgrade.plan`` pass, carry its actions out through the Kubernetes glue, and return the step
(its metrics feed ``gpu_operator_nodes_upgrades_*``). The operator calls ``upgrade_step`` every
pass while ``driver.upgradePolicy.autoUpgrade`` is on (upstream requeues every 2 minutes; a
driver pod or node change is a reason to call sooner)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator import kube
from gpu_operator.driver.groups import plan_groups
from gpu_operator.driver.pools import is_driver_pool
from gpu_operator.driver.upgrade import (
    Annotate,
    Cordon,
    DeletePods,
    Emit,
    EvictPods,
    RestartDriver,
    SetState,
    UpgradeStep,
    plan,
)
from gpu_operator.driver.upgrade_model import STATE_LABEL, UpgradePolicy, node_views
from gpu_operator.errors import GpuOperatorError
from gpu_operator.kube import (
    KubeClient,
    RetryPolicy,
    delete_pod,
    get_node,
    patch_node_labels,
    post_event,
)

log = logging.getLogger(__name__)
REQUEUE_S = 120.0


@dataclass(frozen=True)
class UpgradeSettings:
    """namespace: where the driver DaemonSets and the validator run (``OPERATOR_NAMESPACE``).
    requeue_s: how often to look again while nothing changes (upstream: 2 min).
    retry: API retries for every call."""

    namespace: str = "gpu-operator"
    requeue_s: float = REQUEUE_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def observe(client: KubeClient, settings: UpgradeSettings) -> list[Any]:
    """The managed nodes as ``NodeView``s (nodes that run a driver pod or carry a state)."""
    retry = settings.retry
    daemonsets = [
        ds
        for ds in kube.daemonset_dicts(client, settings.namespace, policy=retry)
        if is_driver_pool(str((ds.get("metadata") or {}).get("name")))
    ]
    return node_views(
        kube.node_dicts(client, policy=retry),
        kube.pod_dicts(client, policy=retry),
        daemonsets,
    )


def upgrade_step(
    client: KubeClient,
    policy: UpgradePolicy | Mapping[str, UpgradePolicy],
    settings: UpgradeSettings = UpgradeSettings(),
    *,
    now: Callable[[], float] = time.time,
) -> UpgradeStep:
    """One reconcile pass of the upgrade controller: observe, plan, act. ``policy`` is the
    ClusterPolicy's, or one per NVIDIADriver CR (owner label value → policy): then each CR's
    nodes go through the state machine on their own (``groups.plan_groups``)."""
    views = observe(client, settings)
    if isinstance(policy, UpgradePolicy):
        step = plan(views, policy, now())
    else:
        step = plan_groups(views, policy, now())
    carry_out(client, step, settings)
    if step.blocked:
        log.warning("driver upgrade: %s", step.blocked)
    return step


def _split(ref: str) -> tuple[str, str]:
    namespace, _, name = ref.partition("/")
    return namespace, name


def carry_out(client: KubeClient, step: UpgradeStep, settings: UpgradeSettings) -> None:
    """Do the step's actions in order. Events are best effort: a failed post is logged, never
    fails the pass."""
    retry = settings.retry
    for action in step.actions:
        node = action.node
        if isinstance(action, SetState):
            desired = {STATE_LABEL: action.state} if action.state else {}
            patch_node_labels(client, node, desired, lambda k: k == STATE_LABEL, policy=retry)
        elif isinstance(action, Annotate):
            wanted = {k: v for k, v in action.annotations.items() if v is not None}
            keys = set(action.annotations)
            patch_node_labels(
                client, node, wanted, keys.__contains__, field="annotations", policy=retry
            )
        elif isinstance(action, Cordon):
            kube.set_unschedulable(client, node, action.unschedulable, policy=retry)
        elif isinstance(action, DeletePods):
            for ref in action.pods:
                delete_pod(client, *reversed(_split(ref)), policy=retry)
        elif isinstance(action, EvictPods):
            for ref in action.pods:
                namespace, name = _split(ref)
                kube.evict_pod(client, name, namespace, policy=retry)
        elif isinstance(action, RestartDriver):
            namespace, name = _split(action.pod)
            delete_pod(client, name, namespace, policy=retry)
        elif isinstance(action, Emit):
            try:
                post_event(
                    client,
                    get_node(client, node, policy=retry),
                    action.reason,
                    action.message,
                    type="Warning" if action.type == "Warning" else "Normal",
                    policy=RetryPolicy(attempts=1),
                )
            except GpuOperatorError as error:
                log.warning("event for node %s not posted: %s", node, error)
