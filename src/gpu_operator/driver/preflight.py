"""The driver part of ``gpu-operator preflight``: for the driver pools the operator will render,
each pool with the exact image it will pull, and (given a tag checker) whether that image exists
— so a missing ``-rocky8`` tag is named before install, not found as ImagePullBackOff after it.
The pools come from the operator's driver renderer (``operator.render.driver.pools``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpu_operator.driver.pools import DriverPool
from gpu_operator.driver.registry import Exists, TagCheck


@dataclass(frozen=True)
class PoolReport:
    pool: DriverPool
    check: TagCheck | None = None
    """``None`` when the registry was not asked."""

    @property
    def missing(self) -> bool:
        return self.check is not None and self.check.exists is Exists.NO


def preflight(
    pools: Iterable[DriverPool], check: Callable[[str], TagCheck] | None = None
) -> list[PoolReport]:
    """One report per pool, the registry asked once per distinct image."""
    pools = tuple(pools)
    checked: dict[str, TagCheck] = {}
    if check is not None:
        for image in sorted({p.image for p in pools}):
            checked[image] = check(image)
    return [PoolReport(p, checked.get(p.image)) for p in pools]
