"""State ``state-operator-metrics``: Service ``gpu-operator`` on :8080 in front of the operator's
own ``gpu_operator_*`` metrics (a ServiceMonitor only when asked for, as it needs that CRD)."""

from __future__ import annotations

from gpu_operator.operator.render.common import (
    PART_OF,
    Obj,
    RenderContext,
    Rendered,
    finish,
    service,
)


def render(ctx: RenderContext) -> Rendered:
    objects: list[Obj] = [
        service(
            ctx,
            "gpu-operator",
            "gpu-operator",
            [{"name": "gpu-operator-metrics", "port": 8080, "targetPort": 8080}],
        )
    ]
    monitor = ctx.spec.operator.metrics.serviceMonitor if ctx.spec.operator.metrics else None
    if monitor and monitor.enabled:
        endpoint: Obj = {"port": "gpu-operator-metrics", "path": "/metrics"}
        if monitor.interval:
            endpoint["interval"] = monitor.interval
        objects.append(
            finish(
                ctx,
                {
                    "apiVersion": "monitoring.coreos.com/v1",
                    "kind": "ServiceMonitor",
                    "metadata": {
                        "name": "gpu-operator",
                        "labels": {PART_OF: "gpu-operator", **(monitor.additionalLabels or {})},
                    },
                    "spec": {
                        "selector": {"matchLabels": {"app": "gpu-operator"}},
                        "endpoints": [endpoint],
                    },
                },
            )
        )
    return Rendered(tuple(objects))
