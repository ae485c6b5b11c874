"""State ``state-container-toolkit``: DaemonSet ``nvidia-container-toolkit-daemonset``, which
configures the node's detected runtime (§3.6) once the driver is validated (init container
``driver-validation``), with the upstream env contract (RUNTIME, CONTAINERD_CONFIG, …)."""

from __future__ import annotations

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
)
from gpu_operator.operator.render.validation import validator_init, validator_volumes
from gpu_operator.operator.upstream_images import is_ours

NAME = "nvidia-container-toolkit-daemonset"
RUNTIMES = {
    # runtime -> (config env, config file, host config dir, socket env, socket, host socket dir)
    "containerd": (
        "CONTAINERD_CONFIG",
        "config.toml",
        "/etc/containerd",
        "CONTAINERD_SOCKET",
        "containerd.sock",
        "/run/containerd",
    ),
    "crio": ("CRIO_CONFIG", "config.toml", "/etc/crio", None, None, None),
    "docker": (
        "DOCKER_CONFIG",
        "daemon.json",
        "/etc/docker",
        "DOCKER_SOCKET",
        "docker.sock",
        "/var/run",
    ),
}


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    runtime = ctx.facts.runtime
    driver_root = (
        spec.hostPaths.driverInstallDir if enabled(spec, "driver") else spec.hostPaths.rootFS
    )
    config_env, config_file, config_dir, socket_env, socket, socket_dir = RUNTIMES[runtime]
    env: list[Obj] = [
        {"name": "RUNTIME", "value": runtime},
        {"name": config_env, "value": f"/runtime/config-dir/{config_file}"},
        {"name": "ROOT", "value": spec.toolkit.installDir},
        {"name": "CDI_ENABLED", "value": str(enabled(spec, "cdi")).lower()},
        {"name": "CDI_OUTPUT_DIR", "value": "/var/run/cdi"},
        {"name": "NVIDIA_DRIVER_ROOT", "value": driver_root},
        {"name": "DRIVER_ROOT_CTR_PATH", "value": "/driver-root"},
        {"name": "HOST_ROOT_MOUNT", "value": "/host"},
        {"name": "NVIDIA_RUNTIME_SET_AS_DEFAULT", "value": "false"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
        {"name": "TOOLKIT_PID_FILE", "value": "/run/nvidia/toolkit/toolkit.pid"},
        NODE_NAME_ENV,
    ]
    if runtime == "containerd":
        # Upstream's transformForRuntime: the runtime handler the RuntimeClass names.
        env.append({"name": "CONTAINERD_RUNTIME_CLASS", "value": spec.operator.runtimeClass})
    mounts: list[Obj] = [
        {"name": "run-nvidia", "mountPath": "/run/nvidia", "mountPropagation": "Bidirectional"},
        validation_mount(),
        {"name": "toolkit-install-dir", "mountPath": "/usr/local/nvidia"},
        {"name": "cdi-root", "mountPath": "/var/run/cdi"},
        {"name": "driver-install-dir", "mountPath": "/driver-root", "readOnly": True},
        {
            "name": "host-root",
            "mountPath": "/host",
            "readOnly": True,
            "mountPropagation": "HostToContainer",
        },
        {"name": "runtime-config", "mountPath": "/runtime/config-dir/"},
    ]
    volumes: list[Obj] = [
        host_volume("run-nvidia", "/run/nvidia", "DirectoryOrCreate"),
        validations_volume(),
        host_volume("toolkit-install-dir", spec.toolkit.installDir, "DirectoryOrCreate"),
        host_volume("cdi-root", "/var/run/cdi", "DirectoryOrCreate"),
        host_volume("host-root", spec.hostPaths.rootFS),
        host_volume("runtime-config", config_dir, "DirectoryOrCreate"),
    ]
    if socket_env:
        env.insert(2, {"name": socket_env, "value": f"/runtime/sock-dir/{socket}"})
        mounts.append({"name": "runtime-socket", "mountPath": "/runtime/sock-dir/"})
        volumes.append(host_volume("runtime-socket", str(socket_dir)))
    names = {v["name"] for v in volumes}
    volumes += [v for v in validator_volumes(ctx) if v["name"] not in names]
    # NVIDIA's installer before ROOT existed (1.7.x) takes the install dir as its one
    # positional DESTINATION, as upstream's v1.9 DaemonSet passed it; later ones accept it too.
    upstream = not is_ours(ctx.image(spec.toolkit, "toolkit"))
    main = container(
        ctx,
        spec.toolkit,
        "toolkit",
        "nvidia-container-toolkit-ctr",
        command=["nvidia-toolkit"],
        args=[spec.toolkit.installDir] if upstream else None,
        env=env,
        mounts=mounts,
    )
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main],
                init_containers=[validator_init(ctx, "driver")],
                volumes=volumes,
                node_selector=deploy_selector("container-toolkit"),
                service_account="nvidia-container-toolkit",
                sections=[spec.toolkit],
                pod={"hostPID": True},
            ),
        )
    )
