"""A tiny in-memory cluster for the upgrade core: carries out its actions and plays the kubelet
and the OnDelete DaemonSet controller (a deleted driver pod comes back on the newest template;
the validator is Ready when the driver is, unless the node is told to fail validation)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gpu_operator.driver.upgrade import (
    Annotate,
    Cordon,
    DeletePods,
    EvictPods,
    RestartDriver,
    SetState,
    UpgradeStep,
)
from gpu_operator.driver.upgrade_model import STATE_LABEL, DriverPod, NodeView, PodView


@dataclass
class SimNode:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    driver_generation: int | None = 1
    fails_validation: bool = False
    pods: list[PodView] = field(default_factory=list)
    restarts: int = 0


@dataclass
class World:
    nodes: dict[str, SimNode]
    generation: int = 1
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, count: int, **node: object) -> World:
        names = [f"gpu-{i:02d}" for i in range(count)]
        return cls({n: SimNode(n, **node) for n in names})  # type: ignore[arg-type]

    def view(self) -> list[NodeView]:
        views = []
        for n in self.nodes.values():
            driver = None
            if n.driver_generation is not None:
                current = n.driver_generation == self.generation
                driver = DriverPod("gpu-operator", f"driver-{n.name}", current, True)
            views.append(
                NodeView(
                    name=n.name,
                    labels=dict(n.labels),
                    annotations=dict(n.annotations),
                    unschedulable=n.unschedulable,
                    driver=driver,
                    validator_ready=driver is not None
                    and driver.current
                    and not n.fails_validation,
                    pods=tuple(n.pods),
                )
            )
        return views

    def apply(self, step: UpgradeStep) -> None:
        for action in step.actions:
            node = self.nodes[action.node]
            if isinstance(action, SetState):
                if action.state:
                    node.labels[STATE_LABEL] = action.state
                else:
                    node.labels.pop(STATE_LABEL, None)
            elif isinstance(action, Annotate):
                for key, value in action.annotations.items():
                    if value is None:
                        node.annotations.pop(key, None)
                    else:
                        node.annotations[key] = value
            elif isinstance(action, Cordon):
                node.unschedulable = action.unschedulable
            elif isinstance(action, DeletePods | EvictPods):
                node.pods = [p for p in node.pods if p.ref not in action.pods]
            elif isinstance(action, RestartDriver):
                node.driver_generation = None
                node.restarts += 1
            else:
                self.events.append((action.node, action.type, action.message))

    def kubelet(self) -> None:
        """The DaemonSet controller recreates deleted driver pods on the newest template."""
        for node in self.nodes.values():
            if node.driver_generation is None:
                node.driver_generation = self.generation

    def state(self, name: str) -> str:
        return self.nodes[name].labels.get(STATE_LABEL, "")

    def states(self) -> dict[str, str]:
        return {n: self.state(n) for n in self.nodes}


def gpu_pod(name: str, **kw: object) -> PodView:
    return replace(PodView("default", name, gpu=True), **kw)  # type: ignore[arg-type]
