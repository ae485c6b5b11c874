"""State ``state-operator-validation``: DaemonSet ``nvidia-operator-validator`` whose init
containers run ``nvidia-validator`` for driver → toolkit → cuda → plugin, each writing its
``/run/nvidia/validations/*-ready`` file; the main container's preStop removes them."""

from __future__ import annotations

from gpu_operator.names import VALIDATIONS_DIR
from gpu_operator.operator.images import pull_policy
from gpu_operator.operator.policy_v1 import enabled
from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    Obj,
    RenderContext,
    Rendered,
    daemonset,
    deploy_selector,
    host_volume,
    merge_env,
    validation_mount,
    validations_volume,
)

NAME = "nvidia-operator-validator"


def _component_env(ctx: RenderContext, component: str) -> list[Obj]:
    spec = ctx.spec
    driver_root = (
        spec.hostPaths.driverInstallDir if enabled(spec, "driver") else spec.hostPaths.rootFS
    )
    env: list[Obj] = [
        {"name": "COMPONENT", "value": component},
        {"name": "WITH_WAIT", "value": "true" if component == "driver" else "false"},
        NODE_NAME_ENV,
        {"name": "OPERATOR_NAMESPACE", "value": ctx.namespace},
        {"name": "DRIVER_INSTALL_DIR", "value": driver_root},
        {"name": "DRIVER_INSTALL_DIR_CTR_PATH", "value": "/run/nvidia/driver"},
    ]
    if component in ("cuda", "plugin"):  # both start a workload pod of the validator image
        env += [
            {"name": "VALIDATOR_IMAGE", "value": ctx.validator_image},
            {"name": "VALIDATOR_IMAGE_PULL_POLICY", "value": pull_policy(spec.validator)},
            {"name": "VALIDATOR_RUNTIME_CLASS", "value": spec.operator.runtimeClass},
        ]
    if component == "plugin":
        env += [
            {"name": "WITH_WORKLOAD", "value": "false"},
            {"name": "MIG_STRATEGY", "value": spec.mig.strategy},
        ]
    if component == "toolkit":
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})
    section = getattr(spec.validator, component)
    return merge_env(env, section.env if section else None)


def validator_init(ctx: RenderContext, component: str) -> Obj:
    """The ``<component>-validation`` init container (upstream's name and env contract)."""
    return {
        "name": f"{component}-validation",
        "image": ctx.validator_image,
        "imagePullPolicy": pull_policy(ctx.spec.validator),
        "command": ["nvidia-validator"],
        "env": _component_env(ctx, component),
        "securityContext": {"privileged": True},
        "volumeMounts": [
            validation_mount() | {"mountPropagation": "Bidirectional"},
            {
                "name": "driver-install-dir",
                "mountPath": "/run/nvidia/driver",
                "mountPropagation": "HostToContainer",
            },
            {
                "name": "host-root",
                "mountPath": "/host",
                "readOnly": True,
                "mountPropagation": "HostToContainer",
            },
            {"name": "host-dev-char", "mountPath": "/host-dev-char"},
        ],
    }


def validator_volumes(ctx: RenderContext) -> list[Obj]:
    return [
        validations_volume(),
        host_volume("driver-install-dir", ctx.spec.hostPaths.driverInstallDir, "DirectoryOrCreate"),
        host_volume("host-root", ctx.spec.hostPaths.rootFS),
        host_volume("host-dev-char", "/dev/char"),
    ]


def render(ctx: RenderContext) -> Rendered:
    spec = ctx.spec
    components = ["driver", "toolkit", "cuda", "plugin"]
    if not enabled(spec, "devicePlugin"):
        components.remove("plugin")
    main: Obj = {
        "name": "nvidia-operator-validator",
        "image": ctx.validator_image,
        "imagePullPolicy": pull_policy(spec.validator),
        "command": ["sh", "-c"],
        "args": ["echo all validations are successful; sleep infinity"],
        "securityContext": {"privileged": True},
        "lifecycle": {
            "preStop": {"exec": {"command": ["sh", "-c", f"rm -f {VALIDATIONS_DIR}/*-ready"]}}
        },
        "volumeMounts": [validation_mount() | {"mountPropagation": "Bidirectional"}],
    }
    if spec.validator.resources:
        main["resources"] = spec.validator.resources.model_dump(exclude_none=True)
    return Rendered(
        (
            daemonset(
                ctx,
                NAME,
                containers=[main],
                init_containers=[validator_init(ctx, c) for c in components],
                volumes=validator_volumes(ctx),
                node_selector=deploy_selector("operator-validator"),
                service_account="nvidia-operator-validator",
                sections=[spec.validator],
                runtime_class=True,
            ),
        )
    )
