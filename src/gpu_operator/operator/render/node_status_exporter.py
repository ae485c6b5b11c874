"""State ``state-node-status-exporter``: DaemonSet ``nvidia-node-status-exporter`` (the
validator image, ``COMPONENT=metrics``) and its Service on :8000."""

from __future__ import annotations

from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    service,
    validation_mount,
    validations_volume,
)

NAME = "nvidia-node-status-exporter"


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    main = container(
        ctx,
        spec.nodeStatusExporter,
        "nodeStatusExporter",
        "nvidia-node-status-exporter",
        command=["nvidia-validator"],
        env=[
            {"name": "COMPONENT", "value": "metrics"},
            {"name": "METRICS_PORT", "value": "8000"},
            NODE_NAME_ENV,
        ],
        mounts=[validation_mount()],
        extra={"ports": [{"name": "node-status", "containerPort": 8000}]},
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main],
                volumes=[validations_volume()],
                node_selector=deploy_selector("node-status-exporter"),
                service_account="nvidia-node-status-exporter",
                sections=[spec.nodeStatusExporter],
            ),
            service(ctx, NAME, NAME, [{"name": "node-status", "port": 8000, "targetPort": 8000}]),
        )
    )
