"""State ``state-driver``: DaemonSet ``nvidia-driver-daemonset`` (always OnDelete, hostPID,
system-node-critical) with the k8s-driver-manager init container and the image tag derived from
the GPU nodes' OS by rule — one DaemonSet per OS pool, never "the first node's OS".

The driver image is computed once, by :func:`pools`: the policy's base image (``image_path``),
then ``driver.pools`` adds each pool's OS (and kernel) tag; ``preflight`` asks the same
function, so it checks exactly the images rendered here.

With ``driver.useNvidiaDriverCRD`` the ClusterPolicy's own driver is not rendered: each
NVIDIADriver CR gets one DaemonSet per OS (and kernel) pool of the nodes it drives
(``nvidia-<driverType>-driver-<cr>-<ostag>``), selecting them by the owner label
(:func:`nvidia_drivers`; ``operator.nvidiadriver`` decides which CR drives which node)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gpu_operator.driver import startup
from gpu_operator.driver.groups import OWNER_LABEL
from gpu_operator.driver.pools import DriverPool, PoolNode, plan_pools, sanitize_kernel
from gpu_operator.errors import ConfigError
from gpu_operator.names import GPU_PRESENT_LABEL, VALIDATIONS_DIR
from gpu_operator.operator.images import image_path, pull_policy
from gpu_operator.operator.nvidiadriver import Assignment, DriverCR, assign
from gpu_operator.operator.nvidiadriver_policy import driver_policy
from gpu_operator.operator.nvidiadriver_v1alpha1 import GROUP_VERSION, KIND
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled
from gpu_operator.operator.render.common import (
    HASH_ANNOTATION,
    NODE_NAME_ENV,
    Obj,
    RenderContext,
    Rendered,
    config_map,
    container,
    content_hash,
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
    return startup.startup_probe(given.model_dump(exclude_none=True) if given else None)


LICENSING_FILE = "gridd.conf"
NLS_TOKEN_FILE = "client_configuration_token.tok"


def _licensing(ctx: RenderContext) -> tuple[Obj, list[Obj]] | None:
    """vGPU licensing (upstream's): ``gridd.conf`` at /drivers/gridd.conf and, with NLS (the
    default), the client token at /drivers/ClientConfigToken/…, from the Secret
    ``licensingConfig.secretName`` or else the ConfigMap ``configMapName``."""
    config = ctx.spec.driver.licensingConfig
    if config is None or not (config.secretName or config.configMapName):
        return None
    keys = [LICENSING_FILE]
    mounts: list[Obj] = [
        {
            "name": "licensing-config",
            "mountPath": f"/drivers/{LICENSING_FILE}",
            "subPath": LICENSING_FILE,
            "readOnly": True,
        }
    ]
    if config.nlsEnabled is not False:
        keys.append(NLS_TOKEN_FILE)
        mounts.append(
            {
                "name": "licensing-config",
                "mountPath": f"/drivers/ClientConfigToken/{NLS_TOKEN_FILE}",
                "subPath": NLS_TOKEN_FILE,
                "readOnly": True,
            }
        )
    items = [{"key": k, "path": k} for k in keys]
    if config.secretName:
        source: Obj = {"secret": {"secretName": config.secretName, "items": items}}
    else:
        source = {"configMap": {"name": config.configMapName, "items": items}}
    return {"name": "licensing-config", **source}, mounts


def _module_type(ctx: RenderContext) -> str:
    driver = ctx.spec.driver
    if driver.useOpenKernelModules and driver.kernelModuleType == "auto":
        return "open"
    return driver.kernelModuleType


def pools(
    spec: ClusterPolicySpec, nodes: Iterable[PoolNode], environ: Mapping[str, str]
) -> tuple[DriverPool, ...]:
    """The driver pools, each with its exact image, for ``nodes`` (none when the driver is
    disabled). For an NVIDIADriver CR, ``spec`` is the CR's view (``driver_policy``)."""
    if not enabled(spec, "driver"):
        return ()
    driver = spec.driver
    return plan_pools(
        nodes,
        image_path(driver, "driver", environ),
        precompiled=bool(driver.usePrecompiled),
        aliases=driver.osAliases,
    )


def _pool_daemonset(
    ctx: RenderContext,
    pool: DriverPool,
    affinity: Obj | None,
    selector: dict[str, str],
    extra_labels: Mapping[str, str] | None = None,
    priority: str = "system-node-critical",
) -> Obj:
    driver = ctx.spec.driver
    rdma = driver.rdma
    env = plain_env(
        KERNEL_MODULE_TYPE=_module_type(ctx),
        OPEN_KERNEL_MODULES_ENABLED=str(_module_type(ctx) == "open").lower(),
        GPU_DIRECT_RDMA_ENABLED=str(bool(rdma and rdma.enabled)).lower(),
        USE_HOST_MOFED=str(bool(rdma and rdma.useHostMofed)).lower(),
        GDS_ENABLED=str(bool(ctx.spec.gds and ctx.spec.gds.enabled)).lower(),
        GDRCOPY_ENABLED=str(bool(ctx.spec.gdrcopy and ctx.spec.gdrcopy.enabled)).lower(),
    )
    mounts: list[Obj] = [
        {"name": "run-nvidia", "mountPath": "/run/nvidia", "mountPropagation": "Bidirectional"},
        {"name": "run-nvidia-validations", "mountPath": VALIDATIONS_DIR},
        {"name": "var-log", "mountPath": "/var/log"},
        {"name": "dev-log", "mountPath": "/dev/log"},
        {"name": "host-os-release", "mountPath": "/host-etc/os-release", "readOnly": True},
        {"name": "firmware", "mountPath": "/lib/firmware"},
        startup.probe_mount(),
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
        startup.probe_volume(),
    ]
    rpm = pool.os_family in RPM_OS
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
    licensing = _licensing(ctx)
    if licensing:
        volumes.append(licensing[0])
        mounts.extend(licensing[1])
    # The pool's image (the policy's base image with the pool's OS tag) replaces the base image.
    extra: Obj = {
        "image": pool.image,
        "startupProbe": _probe(ctx),
        "lifecycle": {"preStop": startup.pre_stop()},
    }
    for key, given in (
        ("livenessProbe", driver.livenessProbe),
        ("readinessProbe", driver.readinessProbe),
    ):
        if given:  # upstream's timings on the startup probe's check
            extra[key] = {
                "exec": {"command": ["sh", startup.SCRIPT_PATH]},
                **given.model_dump(exclude_none=True),
            }
    if driver.secretEnv:
        extra["envFrom"] = [{"secretRef": {"name": driver.secretEnv}}]
    main = container(
        ctx,
        driver,
        "driver",
        "nvidia-driver-ctr",
        command=["nvidia-driver"],
        args=["init"],
        env=env,
        mounts=mounts,
        extra=extra,
    )
    # The digest covers what the driver install depends on (image, command, env, config mounts),
    # so a pod restarted with an unchanged config skips the reinstall.
    digest = startup.config_digest(main)
    main["env"] = [*main.get("env", []), {"name": "DRIVER_CONFIG_DIGEST", "value": digest}]
    pod: Obj = {"hostPID": True}
    if driver.hostNetwork:
        pod["hostNetwork"] = True
    return daemonset(
        ctx,
        pool.name,
        containers=[main],
        init_containers=[_manager(ctx, digest)],
        volumes=volumes,
        node_selector={**deploy_selector("driver"), **selector},
        service_account="nvidia-driver",
        sections=[driver, driver.manager],
        pod=pod,
        on_delete=True,
        priority_class=priority,
        affinity=affinity,
        extra_labels={**pool.labels(), **(extra_labels or {})} or None,
    )


COMPONENT_LABEL = "app.kubernetes.io/component"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def cr_daemonset_name(cr: DriverCR, pool: DriverPool) -> str:
    """``nvidia-<driverType>-driver-<cr>-[<kernel>-]<ostag>``; the CR's name becomes a hash when
    the whole would not be a valid label value (63 characters)."""
    assert cr.spec is not None
    prefix = f"nvidia-{cr.spec.driverType}-driver"
    suffix = (f"{sanitize_kernel(pool.kernel)}-" if pool.kernel else "") + pool.os_tag
    name = f"{prefix}-{cr.name}-{suffix}"
    if len(name) <= 63 and _NAME.match(name):
        return name
    short = f"{prefix}-{hashlib.sha256(cr.name.encode()).hexdigest()[:8]}-{suffix}"
    if len(short) > 63 or not _NAME.match(short):
        raise ConfigError(f"NVIDIADriver {cr.name}: DaemonSet name {short!r} is too long")
    return short


@dataclass(frozen=True)
class CrDrivers:
    """What the NVIDIADriver CRs render to: the node assignment, every CR's DaemonSets (by CR)
    and, for a CR that cannot render, why. ``pools``: each CR's driver pools, named as their
    DaemonSets, with their images (what ``preflight`` checks)."""

    assignment: Assignment = field(default_factory=Assignment)
    daemonsets: Mapping[str, tuple[Obj, ...]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    pools: Mapping[str, tuple[DriverPool, ...]] = field(default_factory=dict)


def _cr_daemonset(ctx: RenderContext, cr: DriverCR, named: DriverPool) -> Obj:
    """``named``: the pool under its DaemonSet name (``cr_daemonset_name``)."""
    labels = {OWNER_LABEL: cr.owner, COMPONENT_LABEL: "nvidia-driver"}
    selector = {**named.node_selector, OWNER_LABEL: cr.owner}
    assert cr.spec is not None
    priority = cr.spec.priorityClassName or "system-node-critical"
    obj = _pool_daemonset(ctx, named, named.node_affinity(), selector, labels, priority)
    if cr.uid:  # traceable to its CR; the policy stays the controller (it deletes what is stale)
        obj["metadata"]["ownerReferences"] = [
            *obj["metadata"].get("ownerReferences", []),
            {"apiVersion": GROUP_VERSION, "kind": KIND, "name": cr.name, "uid": cr.uid},
        ]
        obj["metadata"]["annotations"][HASH_ANNOTATION] = content_hash(obj)
    return obj


def nvidia_drivers(ctx: RenderContext) -> CrDrivers:
    """Each NVIDIADriver CR's DaemonSets for the GPU nodes it drives: the CR's image, tag rule
    and settings (``driver_policy``), split by OS/kernel pool as the ClusterPolicy's driver."""
    crs = ctx.nvidia_drivers
    assignment = assign(crs, ctx.facts.gpu_nodes)
    daemonsets: dict[str, tuple[Obj, ...]] = {}
    errors: dict[str, str] = {}
    named: dict[str, tuple[DriverPool, ...]] = {}
    for cr in crs:
        if cr.spec is None:
            errors[cr.name] = cr.error or "not parsed"
            continue
        mine = [n for n in ctx.facts.gpu_nodes if assignment.owners.get(n.name) == cr.name]
        if not mine:
            continue
        try:
            view = dataclasses.replace(
                ctx, spec=driver_policy(ctx.spec, cr.spec, f"NVIDIADriver {cr.name}")
            )
            planned = pools(view.spec, mine, {})
            mine_named = tuple(
                dataclasses.replace(p, name=cr_daemonset_name(cr, p)) for p in planned
            )
            daemonsets[cr.name] = tuple(_cr_daemonset(view, cr, pool) for pool in mine_named)
            named[cr.name] = mine_named
        except ConfigError as error:
            errors[cr.name] = str(error)
    return CrDrivers(assignment, daemonsets, errors, named)


def render(ctx: RenderContext) -> Rendered:
    driver = ctx.spec.driver
    if driver.useNvidiaDriverCRD:
        rendered = nvidia_drivers(ctx)
        objects = [obj for name in sorted(rendered.daemonsets) for obj in rendered.daemonsets[name]]
        if not objects and not rendered.errors:  # a CR that cannot render keeps what it has
            return Rendered(
                skipped="driver.useNvidiaDriverCRD: no NVIDIADriver drives a GPU node yet: "
                "create one (helm: driver.nvidiaDriverCRD.deployDefaultCR=true)"
            )
        probe = startup.config_map(ctx.namespace)
        return Rendered((config_map(ctx, probe["metadata"]["name"], probe["data"]), *objects))
    if not ctx.facts.gpu_nodes:
        return Rendered(
            skipped=f"no GPU nodes ({GPU_PRESENT_LABEL}=true): the driver OS is unknown"
        )
    try:
        planned = pools(ctx.spec, ctx.facts.gpu_nodes, ctx.environ)
    except ConfigError as error:
        return Rendered(skipped=str(error))
    single = len(planned) == 1 and not driver.usePrecompiled
    objects = [
        _pool_daemonset(
            ctx,
            pool,
            # One pool keeps upstream's shape: no OS pinning, so it matches upstream's DaemonSet.
            None if single else pool.node_affinity(),
            {} if single else dict(pool.node_selector),
        )
        for pool in planned
    ]
    probe = startup.config_map(ctx.namespace)
    return Rendered((config_map(ctx, probe["metadata"]["name"], probe["data"]), *objects))
