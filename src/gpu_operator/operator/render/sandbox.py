"""States 13–20 (vGPU manager, vGPU device manager, sandbox validation, VFIO manager, sandbox
and Kata device plugins, Kata and CC managers): accepted in the policy, rendered as nothing and
reported as unsupported, so a policy that asks for them says so instead of silently passing."""

from __future__ import annotations

from gpu_operator.operator.render.common import RenderContext, Rendered


def render(ctx: RenderContext) -> Rendered:
    return Rendered(skipped="sandbox workloads (VMs, vGPU, Kata) are not supported by gpu-operator")
