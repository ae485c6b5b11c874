"""State ``state-dcgm``: the standalone DCGM host engine (NVIDIA's image, always), DaemonSet
``nvidia-dcgm`` on ``dcgm.hostPort`` (5555) and Service ``nvidia-dcgm``."""

from __future__ import annotations

from gpu_operator.operator.render.common import (
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    service,
    validations_volume,
    wait_for,
)

NAME = "nvidia-dcgm"


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    port = spec.dcgm.hostPort
    main = container(
        ctx,
        spec.dcgm,
        "dcgm",
        "nvidia-dcgm-ctr",
        command=["nv-hostengine"],
        args=["-n", "-b", "ALL"],
        extra={"ports": [{"name": "dcgm", "containerPort": 5555, "hostPort": port}]},
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main],
                init_containers=[wait_for(ctx, "toolkit-validation", "toolkit-ready")],
                volumes=[validations_volume()],
                node_selector=deploy_selector("dcgm"),
                service_account="nvidia-dcgm",
                sections=[spec.dcgm],
                runtime_class=True,
            ),
            service(
                ctx,
                NAME,
                NAME,
                [{"name": "dcgm", "port": port, "targetPort": port, "protocol": "TCP"}],
                internalTrafficPolicy="Local",
            ),
        )
    )
