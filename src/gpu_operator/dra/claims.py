"""Which devices of an allocated ResourceClaim (``resource.k8s.io/v1``) this node's driver
prepares, or why it can't: pure, over the claim as the API returns it.

A claim is ours to prepare when its ``status.allocation.devices.results`` name driver
``gpu.nvidia.com``; every such result must be in this node's pool (pool = node name) and name a
device the node has. Results of other drivers are theirs. Each refusal is one line naming the
claim and what is wrong, returned to the kubelet as that claim's error."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.dra import DRIVER_NAME


class ClaimError(Exception):
    """A claim this node can't prepare; the message is the per-claim error."""


@dataclass(frozen=True)
class ClaimRef:
    """What the kubelet names a claim by."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Result:
    """One allocated device of the claim: the request it serves, its pool and name."""

    request: str
    pool: str
    device: str


def our_results(
    ref: ClaimRef, claim: Mapping[str, Any] | None, node: str, devices: Collection[str]
) -> list[Result]:
    """The results of ``claim`` for our driver, all in ``node``'s pool and on ``devices``."""
    if claim is None:
        raise ClaimError(f"ResourceClaim {ref}: not found")
    uid = (claim.get("metadata") or {}).get("uid")
    if uid != ref.uid:
        raise ClaimError(
            f"ResourceClaim {ref}: has UID {uid}, the kubelet asked for {ref.uid} "
            "(deleted and created again?)"
        )
    allocation = (claim.get("status") or {}).get("allocation")
    if not allocation:
        raise ClaimError(f"ResourceClaim {ref}: not allocated")
    results = [
        r
        for r in ((allocation.get("devices") or {}).get("results") or [])
        if r.get("driver") == DRIVER_NAME
    ]
    if not results:
        raise ClaimError(f"ResourceClaim {ref}: no device of driver {DRIVER_NAME} allocated")
    out = []
    for r in results:
        pool, device = r.get("pool", ""), r.get("device", "")
        if pool != node:
            raise ClaimError(
                f"ResourceClaim {ref}: device {pool}/{device} is not on this node ({node})"
            )
        if device not in devices:
            have = ", ".join(sorted(devices)) or "none"
            raise ClaimError(
                f"ResourceClaim {ref}: device {device} is not on this node ({node} has {have})"
            )
        out.append(Result(request=r.get("request", ""), pool=pool, device=device))
    return out
