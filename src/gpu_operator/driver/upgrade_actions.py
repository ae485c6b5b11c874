"""What one pass of the upgrade controller asks for: the actions (state label, annotations,
cordon, pod deletion, eviction, driver restart, Events), the ``gpu_operator_nodes_upgrades_*``
values, and the step that carries them — plain frozen data, the shell's whole vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EVENT_REASON = "GPUDriverUpgrade"


@dataclass(frozen=True)
class SetState:
    """Set the state label; ``""`` removes it."""

    node: str
    state: str


@dataclass(frozen=True)
class Annotate:
    """Merge-patch node annotations; ``None`` removes one."""

    node: str
    annotations: Mapping[str, str | None]


@dataclass(frozen=True)
class Cordon:
    node: str
    unschedulable: bool = True


@dataclass(frozen=True)
class DeletePods:
    """Delete the GPU pods (``podDeletion``)."""

    node: str
    pods: tuple[str, ...]
    """``namespace/name``."""


@dataclass(frozen=True)
class EvictPods:
    """Evict through the eviction API (``drain``), so PodDisruptionBudgets are honoured."""

    node: str
    pods: tuple[str, ...]


@dataclass(frozen=True)
class RestartDriver:
    """Delete the driver pod; the OnDelete DaemonSet brings up the new one."""

    node: str
    pod: str


@dataclass(frozen=True)
class Emit:
    node: str
    message: str
    type: str = "Normal"
    reason: str = EVENT_REASON


Action = SetState | Annotate | Cordon | DeletePods | EvictPods | RestartDriver | Emit


@dataclass(frozen=True)
class UpgradeMetrics:
    """The values of ``gpu_operator_nodes_upgrades_{in_progress,done,failed,available,pending}``."""

    in_progress: int = 0
    done: int = 0
    failed: int = 0
    available: int = 0
    pending: int = 0


@dataclass(frozen=True)
class UpgradeStep:
    actions: tuple[Action, ...] = ()
    metrics: UpgradeMetrics = field(default_factory=UpgradeMetrics)
    blocked: str | None = None
    """Why nodes wait with nothing in progress (the budget is used by unavailable nodes)."""

    @property
    def empty(self) -> bool:
        return not self.actions
