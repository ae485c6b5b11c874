"""An NVIDIADriver CR as the driver renderer reads a ClusterPolicy: the CR's driver fields become
``spec.driver`` (its image, probes, manager, configs, env, upgrade policy); its labels,
annotations, tolerations and pod security context are laid over ``spec.daemonsets`` (its
priority class replaces the driver's ``system-node-critical`` in the renderer); its
``gds``/``gdrcopy`` switch the driver's env; everything else (``driver.osAliases``, the common
``daemonsets`` settings) stays the ClusterPolicy's. So one renderer, one tag rule
(``driver.images``) and one pool rule (``driver.pools``) serve both. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gpu_operator.driver.upgrade_model import UpgradePolicy
from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import ComponentSpec
from gpu_operator.operator.nvidiadriver import DriverCR
from gpu_operator.operator.nvidiadriver_v1alpha1 import NVIDIADriverSpec
from gpu_operator.operator.policy_v1 import (
    ClusterPolicySpec,
    DaemonsetsSpec,
    DriverSpec,
    DriverUpgradePolicySpec,
)
from gpu_operator.operator.upgrade_policy import upgrade_policy


def base_image(spec: NVIDIADriverSpec, source: str) -> str:
    """The CR's driver image before the OS tag (upstream's ``ImagePath`` without an env
    fallback): ``repository/image:version``, ``image:version`` (``image`` holding the whole
    path, as its default ``nvcr.io/nvidia/driver`` does), or ``image`` with its own tag."""
    repository, image, version = spec.repository, spec.image, spec.version
    if version:
        separator = "@" if version.startswith("sha256:") else ":"
        return (
            f"{repository}/{image}{separator}{version}"
            if repository
            else f"{image}{separator}{version}"
        )
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        return image if not repository else f"{repository}/{image}"
    raise ConfigError(
        f"{source}: spec.version: required (the driver version, or its branch with "
        f"usePrecompiled) unless spec.image carries a tag; image is {image!r}"
    )


def _named(ref: Any, key: str = "name") -> dict[str, str] | None:
    name = getattr(ref, "name", None) if ref is not None else None
    return {key: name} if name else None


def _driver(spec: NVIDIADriverSpec, cluster: DriverSpec, image: str) -> DriverSpec:
    data: dict[str, Any] = spec.model_dump(
        include={
            "usePrecompiled",
            "kernelModuleType",
            "useOpenKernelModules",
            "startupProbe",
            "livenessProbe",
            "readinessProbe",
            "rdma",
            "imagePullPolicy",
            "imagePullSecrets",
            "args",
            "secretEnv",
            "hostNetwork",
            "resources",
        },
        exclude_none=True,
    )
    data["image"] = image  # resolved, tag included: the pool adds the OS suffix
    if spec.env:
        data["env"] = [{"name": e.name, "value": e.value or ""} for e in spec.env]
    if spec.manager:
        manager = spec.manager.model_dump(exclude_none=True)
        for var in manager.get("env") or ():
            var["value"] = var.get("value") or ""
        data["manager"] = manager
    data["repoConfig"] = _named(spec.repoConfig, "configMapName")
    data["certConfig"] = _named(spec.certConfig)
    data["kernelModuleConfig"] = _named(spec.kernelModuleConfig)
    data["virtualTopology"] = _named(spec.virtualTopologyConfig, "config")
    licensing = spec.licensingConfig
    if licensing and (licensing.secretName or licensing.name):
        data["licensingConfig"] = {
            "secretName": licensing.secretName or None,
            "configMapName": licensing.name or None,
            "nlsEnabled": licensing.nlsEnabled,
        }
    if spec.upgradePolicy:
        data["upgradePolicy"] = spec.upgradePolicy.model_dump(exclude_none=True)
    data["osAliases"] = cluster.osAliases
    return DriverSpec.model_validate({k: v for k, v in data.items() if v is not None})


def _daemonsets(spec: NVIDIADriverSpec, cluster: DaemonsetsSpec) -> DaemonsetsSpec:
    update: dict[str, Any] = {
        "labels": {**(cluster.labels or {}), **(spec.labels or {})} or None,
        "annotations": {**(cluster.annotations or {}), **(spec.annotations or {})} or None,
    }
    if spec.tolerations:
        update["tolerations"] = [t.model_dump(exclude_none=True) for t in spec.tolerations]
    if spec.podSecurityContext:
        update["podSecurityContext"] = spec.podSecurityContext.model_dump(exclude_none=True)
    return cluster.model_copy(update=update)


def driver_policy(
    policy: ClusterPolicySpec, spec: NVIDIADriverSpec, source: str
) -> ClusterPolicySpec:
    """The ClusterPolicy spec the driver renderer sees for one CR (a ``ConfigError`` naming the
    CR's field when its image cannot be resolved)."""
    side = {
        key: ({"enabled": bool(getattr(spec, key).enabled)} if getattr(spec, key) else None)
        for key in ("gds", "gdrcopy")
    }
    return policy.model_copy(
        update={
            "driver": _driver(spec, policy.driver, base_image(spec, source)),
            "daemonsets": _daemonsets(spec, policy.daemonsets),
            "gds": _component(side["gds"]),
            "gdrcopy": _component(side["gdrcopy"]),
        }
    )


def _component(data: dict[str, Any] | None) -> ComponentSpec | None:
    return ComponentSpec.model_validate(data) if data else None


def upgrade_spec(spec: NVIDIADriverSpec, cluster: DriverSpec) -> DriverUpgradePolicySpec | None:
    """The CR's ``upgradePolicy``, else the ClusterPolicy's ``driver.upgradePolicy``."""
    if spec.upgradePolicy is None:
        return cluster.upgradePolicy
    return DriverUpgradePolicySpec.model_validate(spec.upgradePolicy.model_dump(exclude_none=True))


def driver_upgrade_policies(
    cluster: DriverSpec, crs: Iterable[DriverCR]
) -> dict[str, UpgradePolicy]:
    """Owner label value → the upgrade policy of that CR's nodes. A CR whose policy is invalid
    is left out (its nodes wait; its status names the field)."""
    out: dict[str, UpgradePolicy] = {}
    for cr in crs:
        if cr.spec is None:
            continue
        try:
            out[cr.owner] = upgrade_policy(upgrade_spec(cr.spec, cluster))
        except ConfigError:
            continue
    return out
