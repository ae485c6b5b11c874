"""The driver part of ``gpu-operator preflight``: for a policy and the GPU nodes, each driver
pool with the exact image it will pull, and (given a tag checker) whether that image exists — so
a missing ``-rocky8`` tag is named before install, not found as ImagePullBackOff after it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gpu_operator.driver.pools import DriverPool, plan_pools
from gpu_operator.driver.registry import Exists, TagCheck
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.images import image_path
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled


@dataclass(frozen=True)
class PoolReport:
    pool: DriverPool
    check: TagCheck | None = None
    """``None`` when the registry was not asked."""

    @property
    def missing(self) -> bool:
        return self.check is not None and self.check.exists is Exists.NO


def driver_pools(
    spec: ClusterPolicySpec, nodes: Iterable[NodeFacts], environ: Mapping[str, str]
) -> tuple[DriverPool, ...]:
    """The pools the operator will render (none when the driver is disabled or hosted)."""
    driver = spec.driver
    if not enabled(spec, "driver") or driver.useNvidiaDriverCRD:
        return ()
    base = image_path(driver, "driver", environ)
    return plan_pools(
        nodes, base, precompiled=bool(driver.usePrecompiled), aliases=driver.osAliases
    )


def preflight(
    spec: ClusterPolicySpec,
    nodes: Iterable[NodeFacts],
    environ: Mapping[str, str],
    check: Callable[[str], TagCheck] | None = None,
) -> list[PoolReport]:
    """One report per pool, the registry asked once per distinct image."""
    pools = driver_pools(spec, nodes, environ)
    checked: dict[str, TagCheck] = {}
    if check is not None:
        for image in sorted({p.image for p in pools}):
            checked[image] = check(image)
    return [PoolReport(p, checked.get(p.image)) for p in pools]
