"""The MIG demand of pending ResourceClaims, for ``gpu-operator mig plan --from-claims`` (pure).

A claim is pending while it has no ``status.allocation``. Each of its requests
(``resource.k8s.io/v1``: ``spec.devices.requests[].exactly``; the flat v1beta1 form is read
too) for DeviceClass
``mig.nvidia.com`` with a CEL selector on the ``profile`` attribute — as upstream's examples
write it, ``device.attributes['gpu.nvidia.com'].profile == '3g.40gb'`` — asks for ``count``
devices of that profile (1 unless ``allocationMode: ExactCount`` says more). Requests that
cannot be planned (``allocationMode: All``, ``firstAvailable``, no profile selector) are listed
with the reason, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MIG_DEVICE_CLASS = "mig.nvidia.com"
"""Upstream's DeviceClass of MIG devices."""

_PROFILE = re.compile(
    r"""(?:\.profile|\[\s*['"]profile['"]\s*\])\s*==\s*['"](?P<a>[^'"]+)['"]"""
    r"""|['"](?P<b>[^'"]+)['"]\s*==\s*device\.attributes\S*?(?:\.profile|\[\s*['"]profile['"]\s*\])"""
)


@dataclass
class ClaimDemand:
    """What pending claims ask for: ``demand`` (profile → devices) and who asks."""

    demand: dict[str, int] = field(default_factory=dict)
    claims: list[str] = field(default_factory=list)
    """``namespace/name (2×3g.40gb)`` of each claim counted."""
    skipped: list[str] = field(default_factory=list)
    """``namespace/name request r: why`` of each MIG request that could not be planned."""


def _profiles(selectors: Iterable[Mapping[str, Any]]) -> set[str]:
    found: set[str] = set()
    for selector in selectors:
        expression = str(((selector or {}).get("cel") or {}).get("expression") or "")
        for match in _PROFILE.finditer(expression):
            found.add(match["a"] or match["b"])
    return found


def claim_demand(claims: Iterable[Mapping[str, Any]]) -> ClaimDemand:
    """The MIG demand of the pending claims among ``claims`` (whole ResourceClaim objects)."""
    out = ClaimDemand()
    for claim in claims:
        meta = claim.get("metadata") or {}
        who = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if (claim.get("status") or {}).get("allocation"):
            continue
        asked: dict[str, int] = {}
        for request in ((claim.get("spec") or {}).get("devices") or {}).get("requests") or []:
            name = request.get("name", "?")
            if request.get("firstAvailable"):
                subs = request["firstAvailable"]
                if any(s.get("deviceClassName") == MIG_DEVICE_CLASS for s in subs):
                    out.skipped.append(
                        f"{who} request {name}: firstAvailable alternatives are not planned"
                    )
                continue
            exactly = request.get("exactly") or request
            if exactly.get("deviceClassName") != MIG_DEVICE_CLASS:
                continue
            profiles = _profiles(exactly.get("selectors") or [])
            mode = exactly.get("allocationMode") or "ExactCount"
            if mode != "ExactCount":
                out.skipped.append(f"{who} request {name}: allocationMode {mode} is not planned")
            elif len(profiles) != 1:
                why = "no profile selector" if not profiles else "several profiles"
                out.skipped.append(
                    f"{who} request {name}: {why} (select one, e.g. "
                    f"device.attributes['gpu.nvidia.com'].profile == '3g.40gb')"
                )
            else:
                (profile,) = profiles
                asked[profile] = asked.get(profile, 0) + int(exactly.get("count") or 1)
        if asked:
            for profile, count in asked.items():
                out.demand[profile] = out.demand.get(profile, 0) + count
            parts = ", ".join(f"{n}×{p}" if n > 1 else p for p, n in sorted(asked.items()))
            out.claims.append(f"{who} ({parts})")
    return out
