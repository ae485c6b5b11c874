"""State ``pre-requisites``: the RuntimeClasses ``nvidia`` (handler ``operator.runtimeClass``),
``nvidia-legacy`` and ``nvidia-cdi`` that operand pods and GPU workloads run under."""

from __future__ import annotations

from gpu_operator.operator.render.common import PART_OF, Obj, RenderContext, Rendered, finish


def _runtime_class(ctx: RenderContext, name: str, handler: str) -> Obj:
    return finish(
        ctx,
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": name, "labels": {PART_OF: "gpu-operator"}},
            "handler": handler,
        },
    )


def render(ctx: RenderContext) -> Rendered:
    main = ctx.spec.operator.runtimeClass
    return Rendered(
        (
            _runtime_class(ctx, main, main),
            _runtime_class(ctx, "nvidia-legacy", "nvidia-legacy"),
            _runtime_class(ctx, "nvidia-cdi", "nvidia-cdi"),
        )
    )
