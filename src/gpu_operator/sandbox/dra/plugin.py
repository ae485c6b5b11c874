"""The scheduler's DynamicResources plugin and the resourceclaim controller, wired to the API
server for one pass of the sandbox scheduler: claims from templates are created and recorded in
``pod.status.resourceClaimStatuses``; a pending pod's claims are allocated on the first node
where all of them fit (``allocator``), written to ``status.allocation`` and
``status.reservedFor`` before the pod is bound; reservations of pods that are gone or done are
dropped, and a claim nobody reserves any more is deallocated. Devices of ``gpu.nvidia.com`` are
tried in the dynamic MIG placement order (``sandbox.dra.mig``) unless another preference is
registered for that driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.sandbox.dra import claims as rules
from gpu_operator.sandbox.dra.allocator import (
    PREFERENCES,
    Allocation,
    Allocator,
    Preferences,
    Unsatisfiable,
    claim_key,
)
from gpu_operator.sandbox.dra.inventory import DeviceRef, Inventory
from gpu_operator.sandbox.dra.mig import mig_preference
from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.scheduling import node_selector_matches

Obj = dict[str, Any]
GROUP = "resource.k8s.io/v1"
CLAIMS = f"{GROUP}/resourceclaims"
TEMPLATES = f"{GROUP}/resourceclaimtemplates"
SLICES = f"{GROUP}/resourceslices"
CLASSES = f"{GROUP}/deviceclasses"
CANNOT_ALLOCATE = "cannot allocate all claims"


def _pending(pod: Mapping[str, Any]) -> bool:
    return (
        not (pod.get("spec") or {}).get("nodeName")
        and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
    )


def allocated_devices(claims: Sequence[Mapping[str, Any]]) -> list[DeviceRef]:
    """Devices in some claim's allocation (admin access shares, so it takes none)."""
    out = []
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        for result in (allocation.get("devices") or {}).get("results") or []:
            if not result.get("adminAccess"):
                out.append(DeviceRef(result["driver"], result["pool"], result["device"]))
    return out


class DynamicResources:
    """One scheduling pass's view of the DRA objects, and the writes it makes."""

    def __init__(
        self,
        rest: Rest,
        pods: Sequence[Obj],
        claims: list[Obj],
        preferences: Preferences = PREFERENCES,
    ):
        self.rest = rest
        self.pods = pods
        self.claims = {claim_key(c): c for c in claims}
        self.preferences = preferences
        self._allocator: Allocator | None = None
        self._tentative: dict[tuple[str, str], list[Allocation]] = {}
        self._detail: dict[str, str] = {}

    @classmethod
    def read(cls, rest: Rest, pods: Sequence[Obj]) -> DynamicResources:
        """The claims (always: releasing needs them) and the controller's writes for them."""
        dra = cls(rest, pods, rest.list(CLAIMS))
        dra.sync()
        return dra

    # -- the resourceclaim controller ------------------------------------------------------

    def sync(self) -> None:
        """Make the claims of templates, record them in pod status, release stale
        reservations and deallocate what nobody reserves."""
        templates: dict[str, Obj] | None = None
        for pod in self.pods:
            meta = pod["metadata"]
            if rules.is_done(pod):
                self._delete_made_for(pod)
                continue
            if meta.get("deletionTimestamp"):
                continue
            wanted = [pc for pc in rules.pod_claims(pod) if pc.get("resourceClaimTemplateName")]
            if not wanted:
                continue
            statuses = {
                s.get("name"): s
                for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
            }
            changed = False
            for pod_claim in wanted:
                if pod_claim["name"] in statuses:
                    continue
                name = rules.claim_name(pod, pod_claim, self.claims.values())
                if name is None:
                    if templates is None:
                        templates = {claim_key(t): t for t in self.rest.list(TEMPLATES)}
                    template = templates.get(
                        f"{meta['namespace']}/{pod_claim['resourceClaimTemplateName']}"
                    )
                    if template is None:
                        continue  # the pod waits; prefilter names the missing template
                    made = self.rest.create(
                        CLAIMS,
                        rules.claim_from_template(pod, pod_claim, template),
                        meta["namespace"],
                    )
                    self.claims[claim_key(made)] = made
                    name = made["metadata"]["name"]
                statuses[pod_claim["name"]] = {"name": pod_claim["name"], "resourceClaimName": name}
                changed = True
            if changed:
                pod.setdefault("status", {})["resourceClaimStatuses"] = list(statuses.values())
                self.rest.patch(
                    "pods",
                    meta["name"],
                    {"status": {"resourceClaimStatuses": list(statuses.values())}},
                    meta["namespace"],
                    subresource="status",
                )
        live = {p["metadata"]["uid"] for p in self.pods if not rules.is_done(p)}
        for key, claim in list(self.claims.items()):
            self._release(key, claim, live)

    def _release(self, key: str, claim: Obj, live: set[str]) -> None:
        """Drop reservations of pods gone or done; deallocate a claim the scheduler allocated
        (it carries the finalizer) once nobody reserves it, and drop the finalizer."""
        meta = claim["metadata"]
        kept = rules.live_reservations(claim, live | self._created_since(claim, live))
        status = claim.get("status") or {}
        ours = rules.DELETE_PROTECTION in (meta.get("finalizers") or [])
        deallocate = not kept and ours and status.get("allocation") is not None
        if kept == rules.reserved_for(claim) and not deallocate:
            if not kept and ours:
                self._drop_finalizer(key, claim)
            return
        patch: Obj = {"reservedFor": kept or None}
        if deallocate:
            patch["allocation"] = None
        try:
            claim = self.rest.patch(
                CLAIMS, meta["name"], {"status": patch}, meta["namespace"], subresource="status"
            )
        except ApiError as error:
            if error.status != 404:
                raise
            self.claims.pop(key, None)
            return
        self.claims[key] = claim
        if not kept and ours:
            self._drop_finalizer(key, claim)

    def _created_since(self, claim: Obj, live: set[str]) -> set[str]:
        """Uids of reserving pods missing from this pass's snapshot that the API still has
        running (created after the snapshot was read): asked before a reservation is dropped."""
        known = {p["metadata"]["uid"] for p in self.pods}
        out = set()
        for entry in rules.reserved_for(claim):
            uid = entry.get("uid")
            if entry.get("resource") != "pods" or uid in live or uid in known:
                continue
            pod = self.rest.get("pods", str(entry.get("name")), claim["metadata"]["namespace"])
            if pod is not None and pod["metadata"]["uid"] == uid and not rules.is_done(pod):
                out.add(str(uid))
        return out

    def _delete_made_for(self, pod: Obj) -> None:
        """A finished pod's claims made from templates are deleted, as the controller does."""
        for pod_claim in rules.pod_claims(pod):
            if not pod_claim.get("resourceClaimTemplateName"):
                continue
            name = rules.claim_name(pod, pod_claim, self.claims.values())
            claim = self.claims.get(f"{pod['metadata']['namespace']}/{name}")
            if claim is None or claim["metadata"].get("deletionTimestamp"):
                continue
            if rules.made_for(claim, pod, pod_claim["name"]):
                self.rest.delete(CLAIMS, claim["metadata"]["name"], pod["metadata"]["namespace"])

    def _drop_finalizer(self, key: str, claim: Obj) -> None:
        meta = claim["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != rules.DELETE_PROTECTION]
        if finalizers == list(meta.get("finalizers") or []):
            return
        try:
            self.claims[key] = self.rest.patch(
                CLAIMS,
                meta["name"],
                {"metadata": {"finalizers": finalizers or None}},
                meta["namespace"],
            )
        except ApiError as error:
            if error.status != 404:
                raise
            self.claims.pop(key, None)

    # -- the scheduler plugin ----------------------------------------------------------------

    def _claims_of(self, pod: Mapping[str, Any]) -> list[Obj] | str:
        """The pod's claims, or why they can't be used yet (as the scheduler's PreFilter)."""
        out = []
        namespace = pod["metadata"]["namespace"]
        for pod_claim in rules.pod_claims(pod):
            name = rules.claim_name(pod, pod_claim, self.claims.values())
            if name is None:
                template = pod_claim.get("resourceClaimTemplateName")
                return (
                    f'waiting for ResourceClaimTemplate "{template}" to make claim '
                    f"{pod_claim['name']}"
                )
            claim = self.claims.get(f"{namespace}/{name}")
            if claim is None:
                return f'resourceclaim "{name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return f'resourceclaim "{name}" is being deleted'
            if pod_claim.get("resourceClaimTemplateName") and not rules.made_for(
                claim, pod, pod_claim["name"]
            ):
                return (
                    f"ResourceClaim {namespace}/{name} was not created for pod "
                    f"{pod['metadata']['name']} (pod is not owner)"
                )
            out.append(claim)
        return out

    def prefilter(self, pod: Mapping[str, Any]) -> str | None:
        """Why no node can take ``pod`` whatever it is (a missing claim); None to go on."""
        if not rules.pod_claims(pod):
            return None
        found = self._claims_of(pod)
        return found if isinstance(found, str) else None

    def _allocator_now(self) -> Allocator:
        if self._allocator is None:
            slices = self.rest.list(SLICES)
            classes = {c["metadata"]["name"]: c for c in self.rest.list(CLASSES)}
            self._allocator = Allocator(
                Inventory.from_slices(slices),
                classes,
                allocated_devices(list(self.claims.values())),
                self.preferences.with_default(DRIVER_NAME, mig_preference(slices)),
            )
        return self._allocator

    def filter(self, pod: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
        """None when the pod's claims can all be had on ``node``; else the scheduler's reason."""
        if not rules.pod_claims(pod):
            return None
        found = self._claims_of(pod)
        if isinstance(found, str):
            return found
        for claim in found:
            allocation = (claim.get("status") or {}).get("allocation")
            selector = (allocation or {}).get("nodeSelector")
            if selector is not None and not node_selector_matches(selector, node):
                self._detail.setdefault(
                    pod["metadata"]["uid"], f"claim {claim_key(claim)} is allocated on other nodes"
                )
                return CANNOT_ALLOCATE
        todo = [c for c in found if (c.get("status") or {}).get("allocation") is None]
        if not todo:
            return None
        try:
            allocations = self._allocator_now().allocate(todo, node)
        except Unsatisfiable as error:
            self._detail.setdefault(pod["metadata"]["uid"], str(error))
            return CANNOT_ALLOCATE
        self._tentative[(pod["metadata"]["uid"], node["metadata"]["name"])] = allocations
        return None

    def explain(self, pod: Mapping[str, Any]) -> str:
        """The first unsatisfied claim and request, for the PodScheduled=False message."""
        detail = self._detail.get(pod["metadata"]["uid"])
        return f" ({detail})" if detail else ""

    def reserve(self, pod: Mapping[str, Any], node: Mapping[str, Any]) -> None:
        """Write the allocations found for ``pod`` on ``node`` and reserve every claim for it."""
        found = self._claims_of(pod)
        if isinstance(found, str) or not found:
            return
        allocations = {
            a.claim: a
            for a in self._tentative.pop((pod["metadata"]["uid"], node["metadata"]["name"]), [])
        }
        if allocations:
            self._allocator_now().commit(allocations.values())
        for claim in found:
            key = claim_key(claim)
            meta = claim["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if rules.DELETE_PROTECTION not in finalizers:
                claim = self.rest.patch(
                    CLAIMS,
                    meta["name"],
                    {"metadata": {"finalizers": [*finalizers, rules.DELETE_PROTECTION]}},
                    meta["namespace"],
                )
            reserved = rules.reserved_for(claim)
            if not any(r.get("uid") == pod["metadata"]["uid"] for r in reserved):
                reserved.append(rules.reservation(pod))
            status: Obj = {"reservedFor": reserved}
            if key in allocations:
                status["allocation"] = allocations[key].status()
            self.claims[key] = self.rest.patch(
                CLAIMS, meta["name"], {"status": status}, meta["namespace"], subresource="status"
            )
