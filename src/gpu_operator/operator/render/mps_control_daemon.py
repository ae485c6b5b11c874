"""State ``state-mps-control-daemon``: DaemonSet ``nvidia-device-plugin-mps-control-daemon``
on nodes whose plugin config shares GPUs by MPS (``nvidia.com/mps.capable=true``)."""

from __future__ import annotations

from gpu_operator.names import MPS_CAPABLE_LABEL
from gpu_operator.operator.render.common import (
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    host_volume,
    validation_mount,
    validations_volume,
    wait_for,
)
from gpu_operator.operator.render.device_plugin import plugin_env

NAME = "nvidia-device-plugin-mps-control-daemon"


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    root = spec.devicePlugin.mps.root if spec.devicePlugin.mps else "/run/nvidia/mps"
    main = container(
        ctx,
        spec.devicePlugin,
        "devicePlugin",
        "mps-control-daemon-ctr",
        command=["mps-control-daemon"],
        env=[e for e in plugin_env(ctx) if e["name"] != "CONFIG_FILE"],
        mounts=[
            validation_mount(),
            {"name": "mps-root", "mountPath": "/mps"},
            {"name": "mps-shm", "mountPath": "/dev/shm"},
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
                    host_volume("mps-root", root, "DirectoryOrCreate"),
                    host_volume("mps-shm", f"{root}/shm"),
                ],
                node_selector={
                    **deploy_selector("device-plugin"),
                    MPS_CAPABLE_LABEL: "true",
                },
                service_account="nvidia-device-plugin",
                sections=[spec.devicePlugin],
                runtime_class=True,
                pod={"hostPID": True},
            ),
        )
    )
