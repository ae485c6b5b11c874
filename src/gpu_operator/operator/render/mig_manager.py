"""State ``state-mig-manager``: DaemonSet ``nvidia-mig-manager`` (``nvidia-mig-manager``, the
label protocol of docs/mig.md) and its ConfigMaps ``default-mig-parted-config`` (our shipped
mig-parted config, key ``config.yaml``) and ``default-gpu-clients``."""

from __future__ import annotations

from importlib import resources

from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    Obj,
    RenderContext,
    Rendered,
    config_map,
    container,
    daemonset,
    deploy_selector,
    host_volume,
    validations_volume,
    wait_for,
)

NAME = "nvidia-mig-manager"
DEFAULT_CONFIG = "default-mig-parted-config"
DEFAULT_CLIENTS = "default-gpu-clients"
GPU_CLIENTS = """\
version: v1
systemd-services:
  - nvsm.service
  - nvsm-mqtt.service
  - nvsm-core.service
  - nvsm-api-gateway.service
  - nvsm-notifier.service
  - nv_peer_mem.service
  - nvidia-dcgm.service
  - dcgm.service
  - dcgm-exporter.service
"""


def default_mig_config() -> str:
    return resources.files("gpu_operator.mig").joinpath("data/config-default.yaml").read_text()


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec.migManager
    custom = spec.config.name if spec.config and spec.config.name else None
    clients = (
        spec.gpuClientsConfig.name
        if spec.gpuClientsConfig and spec.gpuClientsConfig.name
        else DEFAULT_CLIENTS
    )
    env: list[Obj] = [
        NODE_NAME_ENV,
        {
            "name": "CONFIG_FILE" if custom else "DEFAULT_CONFIG_FILE",
            "value": "/mig-parted-config/config.yaml"
            if custom
            else "/mig-parted-config/config-default.yaml",
        },
        {"name": "GPU_CLIENTS_FILE", "value": "/gpu-clients/clients.yaml"},
        {"name": "DEFAULT_GPU_CLIENTS_NAMESPACE", "value": ctx.namespace},
        {"name": "WITH_REBOOT", "value": "false"},
        {"name": "HOST_ROOT_MOUNT", "value": "/host"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
    ]
    config_volume: Obj = {"name": "mig-parted-config", "configMap": {"name": custom}}
    if not custom:
        config_volume["configMap"] = {
            "name": DEFAULT_CONFIG,
            "items": [{"key": "config.yaml", "path": "config-default.yaml"}],
        }
    main = container(
        ctx,
        spec,
        "migManager",
        "nvidia-mig-manager",
        command=["nvidia-mig-manager"],
        env=env,
        mounts=[
            {"name": "host-root", "mountPath": "/host", "mountPropagation": "HostToContainer"},
            {"name": "host-sys", "mountPath": "/sys"},
            {"name": "mig-parted-config", "mountPath": "/mig-parted-config"},
            {"name": "gpu-clients", "mountPath": "/gpu-clients"},
        ],
    )
    objects: list[Obj] = []
    if not custom:
        objects.append(config_map(ctx, DEFAULT_CONFIG, {"config.yaml": default_mig_config()}))
    if clients == DEFAULT_CLIENTS:
        objects.append(config_map(ctx, DEFAULT_CLIENTS, {"clients.yaml": GPU_CLIENTS}))
    objects.append(
        daemonset(
            ctx,
            NAME,
            containers=[main],
            init_containers=[wait_for(ctx, "toolkit-validation", "toolkit-ready")],
            volumes=[
                validations_volume(),
                host_volume("host-root", "/"),
                host_volume("host-sys", "/sys", "Directory"),
                config_volume,
                {"name": "gpu-clients", "configMap": {"name": clients}},
            ],
            node_selector=deploy_selector("mig-manager"),
            service_account="nvidia-mig-manager",
            sections=[spec],
            runtime_class=True,
            pod={"hostPID": True, "hostIPC": True},
        )
    )
    return Rendered(tuple(objects))
