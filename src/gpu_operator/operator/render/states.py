"""The operand states in upstream's fixed order (reference §2.1), when each is enabled, and
``render_all``: every state rendered in one pass (a not-ready state never blocks the next)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled
from gpu_operator.operator.render import (
    dcgm,
    dcgm_exporter,
    device_plugin,
    dra_driver,
    driver,
    gfd,
    mig_manager,
    mps_control_daemon,
    node_status_exporter,
    operator_metrics,
    prerequisites,
    sandbox,
    toolkit,
    validation,
)
from gpu_operator.operator.render.common import RenderContext, Rendered


def _sandbox(*sections: str) -> Callable[[ClusterPolicySpec], bool]:
    def on(spec: ClusterPolicySpec) -> bool:
        return bool(spec.sandboxWorkloads.enabled) and any(
            getattr(getattr(spec, s), "enabled", False)
            for s in sections
            if getattr(spec, s) is not None
        )

    return on


@dataclass(frozen=True)
class State:
    name: str
    enabled: Callable[[ClusterPolicySpec], bool]
    render: Callable[[RenderContext], Rendered]
    needs_gpu_nodes: bool = True


STATES: tuple[State, ...] = (
    State("pre-requisites", lambda s: not s.cdi.nriPluginEnabled, prerequisites.render, False),
    State("state-operator-metrics", lambda s: True, operator_metrics.render, False),
    State("state-driver", lambda s: enabled(s, "driver"), driver.render),
    State("state-container-toolkit", lambda s: enabled(s, "toolkit"), toolkit.render),
    State("state-operator-validation", lambda s: True, validation.render),
    State("state-device-plugin", lambda s: enabled(s, "devicePlugin"), device_plugin.render),
    State(
        "state-mps-control-daemon", lambda s: enabled(s, "devicePlugin"), mps_control_daemon.render
    ),
    State("state-dra-driver", lambda s: enabled(s, "draDriver"), dra_driver.render),
    State("state-dcgm", lambda s: enabled(s, "dcgm"), dcgm.render),
    State("state-dcgm-exporter", lambda s: enabled(s, "dcgmExporter"), dcgm_exporter.render),
    State("gpu-feature-discovery", lambda s: enabled(s, "gfd"), gfd.render),
    State("state-mig-manager", lambda s: enabled(s, "migManager"), mig_manager.render),
    State(
        "state-node-status-exporter",
        lambda s: enabled(s, "nodeStatusExporter"),
        node_status_exporter.render,
    ),
    State("state-vgpu-manager", _sandbox("vgpuManager"), sandbox.render),
    State("state-vgpu-device-manager", _sandbox("vgpuDeviceManager"), sandbox.render),
    State("state-sandbox-validation", lambda s: bool(s.sandboxWorkloads.enabled), sandbox.render),
    State("state-vfio-manager", _sandbox("vfioManager"), sandbox.render),
    State("state-sandbox-device-plugin", _sandbox("sandboxDevicePlugin"), sandbox.render),
    State("state-kata-device-plugin", _sandbox("kataSandboxDevicePlugin"), sandbox.render),
    State("state-kata-manager", lambda s: False, sandbox.render),
    State("state-cc-manager", _sandbox("ccManager"), sandbox.render),
)


@dataclass(frozen=True)
class StateResult:
    """One state's outcome in a pass: disabled, skipped (with why), or objects to apply."""

    name: str
    enabled: bool
    rendered: Rendered


def render_all(ctx: RenderContext) -> list[StateResult]:
    """Every state, in order. Without GPU nodes the DaemonSet states render nothing (ready)."""
    results = []
    for state in STATES:
        on = state.enabled(ctx.spec)
        if not on:
            results.append(StateResult(state.name, False, Rendered()))
        elif state.needs_gpu_nodes and not ctx.facts.gpu_nodes:
            results.append(StateResult(state.name, True, Rendered(skipped="no GPU nodes")))
        else:
            results.append(StateResult(state.name, True, state.render(ctx)))
    return results
