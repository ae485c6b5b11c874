"""State ``state-dra-driver`` (gpu-operator extension, ``draDriver.enabled``): the DRA kubelet
plugin ``gpu.nvidia.com`` as NVIDIA's ``k8s-dra-driver-gpu`` chart deploys it — DaemonSet
``nvidia-dra-driver-gpu-kubelet-plugin`` (container ``gpus``: ``gpu-operator dra-driver`` in our
image, ``gpu-kubelet-plugin`` in NVIDIA's) once ``toolkit-ready`` exists, with the kubelet's
``plugins_registry`` and ``plugins`` directories, the CDI root ``/var/run/cdi``, the driver root
and upstream's variables (``NODE_NAME`` from the downward API, ``FEATURE_GATES`` from
``draDriver.featureGates``) — and the DeviceClasses ``gpu.nvidia.com`` and ``mig.nvidia.com``."""

from __future__ import annotations

from gpu_operator.dra.classes import device_classes
from gpu_operator.operator.policy_v1 import DraDriverSpec, enabled
from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    PART_OF,
    Obj,
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    finish,
    host_volume,
    validations_volume,
    wait_for,
)
from gpu_operator.operator.upstream_images import is_ours

NAME = "nvidia-dra-driver-gpu-kubelet-plugin"
SERVICE_ACCOUNT = "nvidia-dra-driver-gpu"
CONTAINER = "gpus"
DEPLOY_STATE = "dra-driver"
CDI_ROOT = "/var/run/cdi"


def section(ctx: RenderContext) -> DraDriverSpec:
    return ctx.spec.draDriver or DraDriverSpec()


def node_selector(spec: DraDriverSpec) -> dict[str, str]:
    """Where the DaemonSet runs: GPU nodes labelled ``nvidia.com/gpu.deploy.dra-driver=true``
    (upstream's deploy label) that carry every label of ``draDriver.nodeSelector`` too."""
    return {**deploy_selector(DEPLOY_STATE), **(spec.nodeSelector or {})}


def feature_gates(spec: DraDriverSpec) -> str:
    """``FEATURE_GATES`` as upstream's chart writes it from ``featureGates`` (``Name=true``,
    comma-separated; sorted, as Helm ranges over a map)."""
    gates = spec.featureGates or {}
    return ",".join(f"{name}={'true' if gates[name] else 'false'}" for name in sorted(gates))


def env(ctx: RenderContext, image: str) -> list[Obj]:
    spec = ctx.spec
    kubelet = spec.hostPaths.kubeletRootDir
    driver_root = (
        spec.hostPaths.driverInstallDir if enabled(spec, "driver") else spec.hostPaths.rootFS
    )
    out: list[Obj] = [
        {"name": "NVIDIA_DRIVER_ROOT", "value": driver_root},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
        {"name": "CDI_ROOT", "value": CDI_ROOT},
        {"name": "NVIDIA_MIG_CONFIG_DEVICES", "value": "all"},
        NODE_NAME_ENV,
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IMAGE_NAME", "value": image},
        {"name": "KUBELET_REGISTRAR_DIRECTORY_PATH", "value": f"{kubelet}/plugins_registry"},
        {"name": "KUBELET_PLUGINS_DIRECTORY_PATH", "value": f"{kubelet}/plugins"},
    ]
    gates = feature_gates(section(ctx))
    if gates:
        out.append({"name": "FEATURE_GATES", "value": gates})
    return out


def daemonset_object(ctx: RenderContext) -> Obj:
    spec = ctx.spec
    dra = section(ctx)
    kubelet = spec.hostPaths.kubeletRootDir
    driver_root = (
        spec.hostPaths.driverInstallDir if enabled(spec, "driver") else spec.hostPaths.rootFS
    )
    image = ctx.image(dra, "draDriver")
    mounts: list[Obj] = [
        {"name": "plugins-registry", "mountPath": f"{kubelet}/plugins_registry"},
        {
            "name": "plugins",
            "mountPath": f"{kubelet}/plugins",
            "mountPropagation": "Bidirectional",
        },
        {"name": "cdi", "mountPath": CDI_ROOT},
        {"name": "driver-root", "mountPath": "/driver-root", "mountPropagation": "HostToContainer"},
    ]
    volumes: list[Obj] = [
        validations_volume(),
        host_volume("plugins-registry", f"{kubelet}/plugins_registry", "DirectoryOrCreate"),
        host_volume("plugins", f"{kubelet}/plugins", "DirectoryOrCreate"),
        host_volume("cdi", CDI_ROOT, "DirectoryOrCreate"),
        host_volume("driver-root", driver_root, "DirectoryOrCreate"),
    ]
    command = ["gpu-operator", "dra-driver"] if is_ours(image) else ["gpu-kubelet-plugin"]
    main = container(
        ctx, dra, "draDriver", CONTAINER, command=command, env=env(ctx, image), mounts=mounts
    )
    return daemonset(
        ctx,
        NAME,
        containers=[main],
        init_containers=[wait_for(ctx, "toolkit-validation", "toolkit-ready")],
        volumes=volumes,
        node_selector=node_selector(dra),
        service_account=SERVICE_ACCOUNT,
        sections=[dra],
    )


def device_class_objects(ctx: RenderContext) -> list[Obj]:
    """Upstream's DeviceClasses (``gpu_operator.dra.classes``), owned by the policy."""
    out = []
    for device_class in device_classes():
        meta = device_class.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), PART_OF: "gpu-operator"}
        out.append(finish(ctx, device_class))
    return out


def render(ctx: RenderContext) -> Rendered:
    return Rendered((daemonset_object(ctx), *device_class_objects(ctx)))
