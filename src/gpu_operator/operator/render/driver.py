"""State ``state-driver``: DaemonSet ``nvidia-driver-daemonset`` (always OnDelete, hostPID,
system-node-critical) with the k8s-driver-manager init container and the image tag derived from
the GPU nodes' OS by rule — one DaemonSet per OS pool, never "the first node's OS"."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from gpu_operator.operator.cluster import KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL, NodeFacts
from gpu_operator.operator.images import (
    NodeOs,
    driver_image,
    os_tag,
    precompiled_image,
    pull_policy,
)
from gpu_operator.operator.render.common import (
    NODE_NAME_ENV,
    Obj,
    RenderContext,
    Rendered,
    container,
    daemonset,
    deploy_selector,
    host_volume,
    merge_env,
    plain_env,
    validations_volume,
)

NAME = "nvidia-driver-daemonset"
RPM_OS = ("rhel", "rocky", "ol", "centos", "almalinux", "rhcos", "fedora")


def _manager(ctx: RenderContext, digest: str) -> Obj:
    manager = ctx.spec.driver.manager
    env = [
        NODE_NAME_ENV,
        *plain_env(
            NVIDIA_VISIBLE_DEVICES="void",
            ENABLE_GPU_POD_EVICTION="true",
            ENABLE_AUTO_DRAIN="false",
            DRAIN_USE_FORCE="false",
            DRAIN_POD_SELECTOR_LABEL="",
            DRAIN_TIMEOUT_SECONDS="0s",
            DRAIN_DELETE_EMPTYDIR_DATA="false",
            OPERATOR_NAMESPACE=ctx.namespace,
            DRIVER_CONFIG_DIGEST=digest,
        ),
    ]
    return {
        "name": "k8s-driver-manager",
        "image": ctx.image(manager, "driver.manager"),
        "imagePullPolicy": pull_policy(manager),
        "command": ["driver-manager"],
        "args": ["uninstall_driver"],
        "env": merge_env(env, manager.env if manager else None),
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "run-nvidia", "mountPath": "/run/nvidia", "mountPropagation": "Bidirectional"},
            {
                "name": "host-root",
                "mountPath": "/host",
                "readOnly": True,
                "mountPropagation": "HostToContainer",
            },
            {"name": "host-sys", "mountPath": "/sys"},
        ],
    }


def _probe(ctx: RenderContext) -> Obj:
    given = ctx.spec.driver.startupProbe
    probe: Obj = {
        "exec": {
            "command": ["sh", "-c", "nvidia-smi && touch /run/nvidia/validations/.driver-ctr-ready"]
        },
        "initialDelaySeconds": 60,
        "periodSeconds": 10,
        "timeoutSeconds": 60,
        "failureThreshold": 120,
    }
    probe.update(given.model_dump(exclude_none=True) if given else {})
    return probe


def _module_type(ctx: RenderContext) -> str:
    driver = ctx.spec.driver
    if driver.useOpenKernelModules and driver.kernelModuleType == "auto":
        return "open"
    return driver.kernelModuleType


def _pool_daemonset(
    ctx: RenderContext,
    name: str,
    image: str,
    affinity: Obj | None,
    selector: dict[str, str],
    family: str,
) -> Obj:
    driver = ctx.spec.driver
    digest = hashlib.sha256(driver.model_dump_json(exclude_none=True).encode()).hexdigest()[:16]
    rdma = driver.rdma
    env = plain_env(
        KERNEL_MODULE_TYPE=_module_type(ctx),
        OPEN_KERNEL_MODULES_ENABLED=str(_module_type(ctx) == "open").lower(),
        GPU_DIRECT_RDMA_ENABLED=str(bool(rdma and rdma.enabled)).lower(),
        USE_HOST_MOFED=str(bool(rdma and rdma.useHostMofed)).lower(),
        GDS_ENABLED=str(bool(ctx.spec.gds and ctx.spec.gds.enabled)).lower(),
        GDRCOPY_ENABLED=str(bool(ctx.spec.gdrcopy and ctx.spec.gdrcopy.enabled)).lower(),
        DRIVER_CONFIG_DIGEST=digest,
    )
    mounts: list[Obj] = [
        {"name": "run-nvidia", "mountPath": "/run/nvidia", "mountPropagation": "Bidirectional"},
        {"name": "run-nvidia-validations", "mountPath": "/run/nvidia/validations"},
        {"name": "var-log", "mountPath": "/var/log"},
        {"name": "dev-log", "mountPath": "/dev/log"},
        {"name": "host-os-release", "mountPath": "/host-etc/os-release", "readOnly": True},
        {"name": "firmware", "mountPath": "/lib/firmware"},
    ]
    volumes: list[Obj] = [
        host_volume("run-nvidia", "/run/nvidia", "DirectoryOrCreate"),
        validations_volume(),
        host_volume("var-log", "/var/log"),
        host_volume("dev-log", "/dev/log"),
        host_volume("host-os-release", "/etc/os-release"),
        host_volume("firmware", "/lib/firmware", "DirectoryOrCreate"),
        host_volume("host-root", "/"),
        host_volume("host-sys", "/sys", "Directory"),
    ]
    rpm = family in RPM_OS
    for ref, volume, path in (
        (
            driver.repoConfig.configMapName if driver.repoConfig else None,
            "repo-config",
            "/etc/yum.repos.d" if rpm else "/etc/apt/sources.list.d",
        ),
        (
            driver.certConfig.name if driver.certConfig else None,
            "cert-config",
            "/etc/pki/ca-trust/extracted/pem" if rpm else "/etc/ssl/certs",
        ),
        (
            driver.kernelModuleConfig.name if driver.kernelModuleConfig else None,
            "kernel-module-config",
            "/drivers",
        ),
    ):
        if ref:
            volumes.append({"name": volume, "configMap": {"name": ref}})
            mounts.append({"name": volume, "mountPath": path, "readOnly": True})
    main = container(
        ctx,
        driver,
        "driver",
        "nvidia-driver-ctr",
        command=["nvidia-driver"],
        args=["init"],
        env=env,
        mounts=mounts,
        extra={
            "startupProbe": _probe(ctx),
            "lifecycle": {
                "preStop": {
                    "exec": {
                        "command": [
                            "sh",
                            "-c",
                            "rm -f /run/nvidia/validations/.driver-ctr-ready"
                            " /run/nvidia/validations/.driver-daemons-status",
                        ]
                    }
                }
            },
        },
    )
    main["image"] = image
    pod: Obj = {"hostPID": True}
    if driver.hostNetwork:
        pod["hostNetwork"] = True
    return daemonset(
        ctx,
        name,
        containers=[main],
        init_containers=[_manager(ctx, digest)],
        volumes=volumes,
        node_selector={**deploy_selector("driver"), **selector},
        service_account="nvidia-driver",
        sections=[driver, driver.manager],
        pod=pod,
        on_delete=True,
        priority_class="system-node-critical",
        affinity=affinity,
        extra_labels={"nvidia.com/precompiled": "true"} if driver.usePrecompiled else None,
    )


def _os_affinity(oses: set[NodeOs]) -> Obj:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": OS_ID_LABEL,
                                "operator": "In",
                                "values": sorted({o.id for o in oses}),
                            },
                            {
                                "key": OS_VERSION_LABEL,
                                "operator": "In",
                                "values": sorted({o.version_id for o in oses}),
                            },
                        ]
                    }
                ]
            }
        }
    }


def _sanitize(kernel: str) -> str:
    for arch in (".x86_64", ".aarch64", "-x86_64", "-aarch64"):
        kernel = kernel.replace(arch, "")
    return kernel.replace("_", ".").lower()


def render(ctx: RenderContext) -> Rendered:
    driver = ctx.spec.driver
    if driver.useNvidiaDriverCRD:
        return Rendered(
            skipped="driver.useNvidiaDriverCRD: NVIDIADriver CRs are not supported by gpu-operator"
        )
    if not ctx.facts.gpu_nodes:
        return Rendered(
            skipped="no GPU nodes (nvidia.com/gpu.present=true): the driver OS is unknown"
        )
    aliases = driver.osAliases
    base = ctx.image(driver, "driver")
    unknown = [n.name for n in ctx.facts.gpu_nodes if n.os is None]
    if unknown:
        return Rendered(
            skipped=f"GPU nodes without OS labels ({OS_ID_LABEL}): {', '.join(unknown)}"
        )
    if driver.usePrecompiled:
        return _precompiled(ctx, base)
    pools: dict[str, set[NodeOs]] = defaultdict(set)
    for node in ctx.facts.gpu_nodes:
        assert node.os is not None
        pools[os_tag(node.os, aliases)].add(node.os)
    if len(pools) == 1:
        ((oses),) = pools.values()
        first = min(oses)
        return Rendered(
            (_pool_daemonset(ctx, NAME, driver_image(base, first, aliases), None, {}, first.id),)
        )
    return Rendered(
        tuple(
            _pool_daemonset(
                ctx,
                f"{NAME}-{tag}",
                driver_image(base, min(oses), aliases),
                _os_affinity(oses),
                {},
                min(oses).id,
            )
            for tag, oses in sorted(pools.items())
        )
    )


def _precompiled(ctx: RenderContext, base: str) -> Rendered:
    kernels: dict[str, NodeFacts] = {}
    for node in ctx.facts.gpu_nodes:
        if not node.kernel:
            return Rendered(skipped=f"usePrecompiled: node {node.name} has no {KERNEL_LABEL} label")
        kernels.setdefault(node.kernel, node)
    objects = []
    for kernel, node in sorted(kernels.items()):
        assert node.os is not None
        tag = os_tag(node.os, ctx.spec.driver.osAliases)
        image = precompiled_image(base, kernel, node.os, ctx.spec.driver.osAliases)
        name = f"{NAME}-{_sanitize(kernel)}-{tag}"
        objects.append(_pool_daemonset(ctx, name, image, None, {KERNEL_LABEL: kernel}, node.os.id))
    return Rendered(tuple(objects))
