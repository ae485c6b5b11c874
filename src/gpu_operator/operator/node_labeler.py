"""The ``node-labeler`` agent: keeps this node's NFD-style labels (``node_features``) in step
with its files, writing only the keys it owns and only when they differ."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from lightkube import Client

from gpu_operator.errors import ConfigError
from gpu_operator.kube import patch_node_labels
from gpu_operator.operator.node_features import FeatureRoots, node_features, owns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelerSettings:
    """node_name: ``NODE_NAME`` (required). roots: the node's files (``HOST_ROOT`` prefixes
    ``/etc/os-release``; ``SYS_ROOT`` is ``/sys``). interval_s: seconds between passes
    (``NODE_LABELER_INTERVAL_S``, default 60); oneshot: one pass, then exit."""

    node_name: str
    roots: FeatureRoots = field(default_factory=FeatureRoots)
    interval_s: float = 60.0
    oneshot: bool = False

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ConfigError("NODE_NAME must be set to the name of this node")
        if self.interval_s <= 0:
            raise ConfigError(f"NODE_LABELER_INTERVAL_S: must be > 0, got {self.interval_s}")


def label_once(client: Client, settings: LabelerSettings) -> dict[str, str | None]:
    """One pass: the patch sent (empty when the node already carries the labels)."""
    desired = node_features(settings.roots)
    patch = patch_node_labels(client, settings.node_name, desired, owns)
    if patch:
        log.info("node %s: labels %s", settings.node_name, patch)
    return patch


def run(client: Client, settings: LabelerSettings, stop: threading.Event | None = None) -> None:
    """Label, then again every ``interval_s`` until ``stop`` is set (or once, for oneshot)."""
    stop = stop or threading.Event()
    while True:
        label_once(client, settings)
        if settings.oneshot or stop.wait(settings.interval_s):
            return
