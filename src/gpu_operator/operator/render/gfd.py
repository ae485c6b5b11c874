"""State ``gpu-feature-discovery``: DaemonSet ``gpu-feature-discovery`` writing the
``nvidia.com/gpu.*``/``mig*`` labels once ``toolkit-ready`` exists (MIG_STRATEGY from policy)."""

from __future__ import annotations

from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    Obj,
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    host_volume,
    validations_volume,
    wait_for,
)

NAME = "gpu-feature-discovery"


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    env: list[Obj] = [
        {"name": "GFD_SLEEP_INTERVAL", "value": "60s"},
        {"name": "GFD_FAIL_ON_INIT_ERROR", "value": "true"},
        {"name": "MIG_STRATEGY", "value": spec.mig.strategy},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        NODE_NAME_ENV,
        {"name": "NAMESPACE", "value": ctx.namespace},
    ]
    if spec.mig.strategy != "none":
        env.append({"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": "all"})
    main = container(
        ctx,
        spec.gfd,
        "gfd",
        "gpu-feature-discovery",
        command=["gpu-feature-discovery"],
        env=env,
        mounts=[
            {
                "name": "output-dir",
                "mountPath": "/etc/kubernetes/node-feature-discovery/features.d",
            },
            {"name": "host-sys", "mountPath": "/sys"},
        ],
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main],
                init_containers=[wait_for(ctx, "toolkit-validation", "toolkit-ready")],
                volumes=[
                    validations_volume(),
                    host_volume("output-dir", "/etc/kubernetes/node-feature-discovery/features.d"),
                    host_volume("host-sys", "/sys"),
                ],
                node_selector=deploy_selector("gpu-feature-discovery"),
                service_account="nvidia-gpu-feature-discovery",
                sections=[spec.gfd],
                runtime_class=True,
            ),
        )
    )
