"""State ``state-device-plugin``: DaemonSet ``nvidia-device-plugin-daemonset`` running
``nvidia-device-plugin`` once ``toolkit-ready`` exists, with MIG_STRATEGY and the plugin env
contract; a ``devicePlugin.config`` ConfigMap adds upstream's config-manager init + sidecar."""

from __future__ import annotations

from gpu_operator.names import DEVICE_PLUGIN_CONFIG_LABEL
from gpu_operator.operator.policy_v1 import enabled
from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    Obj,
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

NAME = "nvidia-device-plugin-daemonset"
CONFIG_LABEL = DEVICE_PLUGIN_CONFIG_LABEL


def plugin_env(ctx: RenderContext) -> list[Obj]:
    """The env shared by the device plugin and the MPS control daemon."""
    spec = ctx.spec
    driver_root = (
        spec.hostPaths.driverInstallDir if enabled(spec, "driver") else spec.hostPaths.rootFS
    )
    env: list[Obj] = [
        {"name": "PASS_DEVICE_SPECS", "value": "true"},
        {"name": "FAIL_ON_INIT_ERROR", "value": "true"},
        {"name": "DEVICE_LIST_STRATEGY", "value": "cdi-cri" if enabled(spec, "cdi") else "envvar"},
        {"name": "DEVICE_ID_STRATEGY", "value": "uuid"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"},
        {"name": "MIG_STRATEGY", "value": spec.mig.strategy},
        {"name": "NVIDIA_DRIVER_ROOT", "value": driver_root},
        {"name": "DRIVER_ROOT_CTR_PATH", "value": "/driver-root"},
        {
            "name": "MPS_ROOT",
            "value": spec.devicePlugin.mps.root if spec.devicePlugin.mps else "/run/nvidia/mps",
        },
        NODE_NAME_ENV,
    ]
    if spec.mig.strategy != "none":
        env.append({"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": "all"})
    if has_config(ctx):
        env.append({"name": "CONFIG_FILE", "value": "/config/config.yaml"})
    return env


def config_manager(ctx: RenderContext, init: bool, process: str = "nvidia-device-plugin") -> Obj:
    """Upstream's ``config-manager`` (in the device plugin's image): copies the config the node
    label selects to /config; the sidecar signals ``process`` when it changes."""
    cfg = ctx.spec.devicePlugin.config
    default = (cfg.default if cfg else None) or ""
    return container(
        ctx,
        None,
        "devicePlugin",
        "config-manager-init" if init else "config-manager",
        command=["config-manager"],
        env=[
            NODE_NAME_ENV,
            {"name": "ONESHOT", "value": "true" if init else "false"},
            {"name": "KUBECONFIG", "value": ""},
            {"name": "NODE_LABEL", "value": CONFIG_LABEL},
            {"name": "CONFIG_FILE_SRCDIR", "value": "/available-configs"},
            {"name": "CONFIG_FILE_DST", "value": "/config/config.yaml"},
            {"name": "DEFAULT_CONFIG", "value": default},
            {"name": "FALLBACK_STRATEGIES", "value": "named,single"},
            {"name": "SEND_SIGNAL", "value": "false" if init else "true"},
            {"name": "SIGNAL", "value": "1"},
            {"name": "PROCESS_TO_SIGNAL", "value": process},
        ],
        mounts=[
            {"name": "available-configs", "mountPath": "/available-configs"},
            {"name": "config", "mountPath": "/config"},
        ],
        privileged=False,
    ) | {"image": ctx.image(ctx.spec.devicePlugin, "devicePlugin")}


def config_volumes(ctx: RenderContext) -> list[Obj]:
    """The plugin ConfigMap (every named config) and the emptyDir the selected one goes to."""
    cfg = ctx.spec.devicePlugin.config
    assert cfg is not None
    assert cfg.name
    return [
        {"name": "available-configs", "configMap": {"name": cfg.name}},
        {"name": "config", "emptyDir": {}},
    ]


def has_config(ctx: RenderContext) -> bool:
    cfg = ctx.spec.devicePlugin.config
    return bool(cfg and cfg.name)


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    mounts: list[Obj] = [
        {"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"},
        validation_mount(),
        {
            "name": "driver-install-dir",
            "mountPath": "/driver-root",
            "mountPropagation": "HostToContainer",
        },
        {
            "name": "host-root",
            "mountPath": "/host",
            "readOnly": True,
            "mountPropagation": "HostToContainer",
        },
        {"name": "cdi-root", "mountPath": "/var/run/cdi"},
        {"name": "mps-root", "mountPath": "/mps", "mountPropagation": "HostToContainer"},
    ]
    volumes: list[Obj] = [
        host_volume("device-plugin", f"{spec.hostPaths.kubeletRootDir}/device-plugins"),
        validations_volume(),
        host_volume("driver-install-dir", spec.hostPaths.driverInstallDir, "DirectoryOrCreate"),
        host_volume("host-root", spec.hostPaths.rootFS),
        host_volume("cdi-root", "/var/run/cdi", "DirectoryOrCreate"),
        host_volume(
            "mps-root",
            spec.devicePlugin.mps.root if spec.devicePlugin.mps else "/run/nvidia/mps",
            "DirectoryOrCreate",
        ),
    ]
    inits = [wait_for(ctx, "toolkit-validation", "toolkit-ready")]
    containers = []
    if has_config(ctx):
        mounts.append({"name": "config", "mountPath": "/config"})
        volumes += config_volumes(ctx)
        inits.append(config_manager(ctx, init=True))
        containers.append(config_manager(ctx, init=False))
    main = container(
        ctx,
        spec.devicePlugin,
        "devicePlugin",
        "nvidia-device-plugin",
        command=["nvidia-device-plugin"],
        env=plugin_env(ctx),
        mounts=mounts,
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main, *containers],
                init_containers=inits,
                volumes=volumes,
                node_selector=deploy_selector("device-plugin"),
                service_account="nvidia-device-plugin",
                sections=[spec.devicePlugin],
                runtime_class=True,
                pod={"shareProcessNamespace": True} if containers else None,
            ),
        )
    )
