"""State ``gpu-feature-discovery``: DaemonSet ``gpu-feature-discovery`` writing the
``nvidia.com/gpu.*``/``mig*`` labels once ``toolkit-ready`` exists (MIG_STRATEGY from policy);
with a ``devicePlugin.config`` it gets the same config-manager pair as the device plugin, so its
``replicas``/``sharing-strategy`` labels follow the node's config."""

from __future__ import annotations

from gpu_operator.names import NFD_FEATURES_DIR
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
from gpu_operator.operator.render.device_plugin import config_manager, config_volumes, has_config

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
    mounts: list[Obj] = [
        {
            "name": "output-dir",
            "mountPath": NFD_FEATURES_DIR,
        },
        {"name": "host-sys", "mountPath": "/sys"},
    ]
    volumes = [
        validations_volume(),
        host_volume("output-dir", NFD_FEATURES_DIR),
        host_volume("host-sys", "/sys"),
    ]
    inits = [wait_for(ctx, "toolkit-validation", "toolkit-ready")]
    sidecars = []
    if has_config(ctx):
        env.append({"name": "CONFIG_FILE", "value": "/config/config.yaml"})
        mounts.append({"name": "config", "mountPath": "/config"})
        volumes += config_volumes(ctx)
        inits.append(config_manager(ctx, init=True, process="gpu-feature-discovery"))
        sidecars.append(config_manager(ctx, init=False, process="gpu-feature-discovery"))
    main = container(
        ctx,
        spec.gfd,
        "gfd",
        "gpu-feature-discovery",
        command=["gpu-feature-discovery"],
        env=env,
        mounts=mounts,
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main, *sidecars],
                init_containers=inits,
                volumes=volumes,
                node_selector=deploy_selector("gpu-feature-discovery"),
                service_account="nvidia-gpu-feature-discovery",
                sections=[spec.gfd],
                runtime_class=True,
                pod={"shareProcessNamespace": True} if sidecars else None,
            ),
        )
    )
