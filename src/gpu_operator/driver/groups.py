"""Driver groups: with NVIDIADriver CRs each GPU node belongs to one CR, named by the node label
``OWNER_LABEL`` the operator writes; the upgrade state machine runs once per group, with that
group's policy and limits (``maxParallelUpgrades``, ``maxUnavailable`` count the group's nodes),
so a CR's version change walks only that CR's nodes. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from gpu_operator.driver.upgrade import plan
from gpu_operator.driver.upgrade_actions import Action, UpgradeMetrics, UpgradeStep
from gpu_operator.driver.upgrade_model import NodeView, UpgradePolicy

OWNER_LABEL = "gpu-operator.nvidia.com/nvidia-driver"
"""Ours: which NVIDIADriver CR drives the node's GPUs (its name, or ``nvd-<hash>`` when longer
than a label value may be). Every CR's DaemonSets select on it, so no node matches two."""
_LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def owner_value(cr_name: str) -> str:
    """The ``OWNER_LABEL`` value for a CR: its name when it is a valid label value."""
    if len(cr_name) <= 63 and _LABEL_VALUE.match(cr_name):
        return cr_name
    return "nvd-" + hashlib.sha256(cr_name.encode()).hexdigest()[:16]


def plan_groups(
    nodes: Iterable[NodeView], policies: Mapping[str, UpgradePolicy], now: float
) -> UpgradeStep:
    """One upgrade pass per group (``policies``: owner label value → that CR's policy). Nodes of
    no listed group are left alone (a node between owners keeps its state until it has one)."""
    groups: dict[str, list[NodeView]] = {}
    for node in nodes:
        owner = node.labels.get(OWNER_LABEL, "")
        if owner in policies:
            groups.setdefault(owner, []).append(node)
    actions: list[Action] = []
    totals = dict.fromkeys(("in_progress", "done", "failed", "available", "pending"), 0)
    blocked = []
    for owner in sorted(policies):
        step = plan(groups.get(owner, []), policies[owner], now)
        actions += step.actions
        for key in totals:
            totals[key] += getattr(step.metrics, key)
        if step.blocked:
            blocked.append(f"NVIDIADriver {owner}: {step.blocked}")
    return UpgradeStep(tuple(actions), UpgradeMetrics(**totals), "; ".join(blocked) or None)
