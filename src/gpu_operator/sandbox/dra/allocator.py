"""Structured-parameters allocation, a pure function of plain objects: which devices of one node
satisfy every request of a pod's unallocated ResourceClaims.

A request is ``exactly`` one device class (``allocationMode`` ``ExactCount`` with ``count``, or
``All`` matching devices) or ``firstAvailable`` subrequests tried in order. A device qualifies
when its DeviceClass's and the request's CEL selectors select it, it is on the node, it is not
in another claim's allocation, its ``NoSchedule``/``NoExecute`` taints are tolerated and the
counters it consumes are still left in its pool's counter sets. ``constraints[].matchAttribute``
holds across the requests it names. The search backtracks, so a choice for one request does not
starve a later one, within ``STEP_LIMIT`` steps.

Devices are tried in slice order unless a preference is registered for their driver
(``Preferences.register(driver, prefer)``): ``prefer(candidates)`` returns the candidates it
wants, best first (MIG placement ranks them so GPUs keep their largest free profiles)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from gpu_operator.sandbox.dra.cel import CelError, Selector, compile_selector
from gpu_operator.sandbox.dra.inventory import Device, DeviceRef, Inventory
from gpu_operator.sandbox.scheduling import tolerated

Obj = dict[str, Any]
STEP_LIMIT = 100_000
"""Devices tried per pod and node before the search gives up (Kubernetes bounds it in time)."""


class Unsatisfiable(Exception):
    """The claims cannot be allocated on this node; the message names the claim and request."""


@dataclass(frozen=True)
class Candidate:
    """A device a request could get, with its pool's state at the time of asking."""

    device: Device
    counters_left: Mapping[str, Mapping[str, Fraction | int]]
    """Counter set → counter → what is left of it in the device's pool."""
    in_use: frozenset[DeviceRef]
    """Devices of the device's pool in an allocation (other claims', or this pod's so far)."""


Prefer = Callable[[Sequence[Candidate]], Sequence[Candidate]]


class Preferences:
    """Per-driver device orderings the scheduler consults (default: slice order)."""

    def __init__(self) -> None:
        self._by_driver: dict[str, Prefer] = {}

    def register(self, driver: str, prefer: Prefer) -> None:
        self._by_driver[driver] = prefer

    def unregister(self, driver: str) -> None:
        self._by_driver.pop(driver, None)

    def has(self, driver: str) -> bool:
        return driver in self._by_driver

    def with_default(self, driver: str, prefer: Prefer) -> Preferences:
        """A copy with ``prefer`` for ``driver`` unless one is registered for it already."""
        out = Preferences()
        out._by_driver = {driver: prefer, **self._by_driver}
        return out

    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Each driver's candidates as its ``prefer`` ranks them (those it leaves out are not
        used), drivers in the order their first device appears."""
        groups: dict[str, list[Candidate]] = {}
        for c in candidates:
            groups.setdefault(c.device.ref.driver, []).append(c)
        out: list[Candidate] = []
        for driver, group in groups.items():
            prefer = self._by_driver.get(driver)
            if prefer is None:
                out += group
                continue
            allowed = {id(c) for c in group}
            out += [c for c in prefer(group) if id(c) in allowed]
        return out


PREFERENCES = Preferences()
"""The preferences the sandbox scheduler uses; a driver's placement logic registers here."""


@dataclass(frozen=True)
class Alternative:
    """One way to satisfy a request: ``exactly`` itself or one ``firstAvailable`` subrequest."""

    result_name: str
    class_name: str
    selectors: tuple[Selector, ...]
    mode: str
    count: int
    tolerations: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Request:
    claim: str
    name: str
    alternatives: tuple[Alternative, ...]
    constraints: tuple[int, ...]
    """Indexes into the claim's ``constraints`` that name this request."""


@dataclass(frozen=True)
class Result:
    request: str
    device: DeviceRef

    def status(self) -> Obj:
        return {
            "request": self.request,
            "driver": self.device.driver,
            "pool": self.device.pool,
            "device": self.device.device,
        }


@dataclass
class Allocation:
    """What one claim got: ``status.allocation`` less the timestamp."""

    claim: str
    results: list[Result]
    node_selector: Obj | None
    config: list[Obj] = field(default_factory=list)

    def status(self) -> Obj:
        out: Obj = {"devices": {"results": [r.status() for r in self.results]}}
        if self.config:
            out["devices"]["config"] = self.config
        if self.node_selector is not None:
            out["nodeSelector"] = self.node_selector
        return out


def claim_key(claim: Mapping[str, Any]) -> str:
    return f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"


def _selectors(where: str, raw: Iterable[Mapping[str, Any]]) -> tuple[Selector, ...]:
    out = []
    for n, selector in enumerate(raw):
        expression = (selector.get("cel") or {}).get("expression", "")
        try:
            out.append(compile_selector(expression))
        except CelError as error:
            raise Unsatisfiable(f"{where}: selector #{n}: {error}") from error
    return tuple(out)


def _alternative(
    key: str, result_name: str, raw: Mapping[str, Any], classes: Mapping[str, Obj]
) -> Alternative:
    where = f"claim {key}, request {result_name}"
    if raw.get("adminAccess"):
        raise Unsatisfiable(f"{where}: adminAccess is not supported by the sandbox scheduler")
    class_name = raw.get("deviceClassName", "")
    device_class = classes.get(class_name)
    if device_class is None:
        raise Unsatisfiable(f"{where}: device class {class_name} does not exist")
    class_selectors = _selectors(
        f"{where}: class {class_name}", (device_class.get("spec") or {}).get("selectors") or []
    )
    mode = raw.get("allocationMode") or "ExactCount"
    return Alternative(
        result_name=result_name,
        class_name=class_name,
        selectors=class_selectors + _selectors(where, raw.get("selectors") or []),
        mode=mode,
        count=int(raw.get("count") or 1),
        tolerations=tuple(raw.get("tolerations") or ()),
    )


def requests_of(claim: Mapping[str, Any], classes: Mapping[str, Obj]) -> list[Request]:
    """The claim's requests, with their classes' selectors compiled in; ``Unsatisfiable`` for
    a missing class or a selector that does not compile."""
    key = claim_key(claim)
    devices = (claim.get("spec") or {}).get("devices") or {}
    constraints = devices.get("constraints") or []
    out = []
    for raw in devices.get("requests") or []:
        name = raw["name"]
        alternatives: tuple[Alternative, ...]
        if raw.get("exactly") is not None:
            alternatives = (_alternative(key, name, raw["exactly"], classes),)
        else:
            alternatives = tuple(
                _alternative(key, f"{name}/{sub['name']}", sub, classes)
                for sub in raw.get("firstAvailable") or []
            )
        named = tuple(
            n
            for n, c in enumerate(constraints)
            if not c.get("requests") or name in (c.get("requests") or [])
        )
        out.append(Request(key, name, alternatives, named))
    return out


def _usable(device: Device, alternative: Alternative) -> bool:
    return all(
        tolerated(t, alternative.tolerations)
        for t in device.taints
        if t.get("effect") in ("NoSchedule", "NoExecute")
    )


@dataclass
class _State:
    """Devices and counters taken: by other claims (committed) and by this search (tentative)."""

    in_use: set[DeviceRef] = field(default_factory=set)
    used: dict[tuple[str, str, str], dict[str, Fraction | int]] = field(default_factory=dict)

    def take(self, device: Device) -> None:
        self.in_use.add(device.ref)
        for counter_set, counters in device.consumes:
            slot = self.used.setdefault((device.ref.driver, device.ref.pool, counter_set), {})
            for name, value in counters.items():
                slot[name] = slot.get(name, 0) + value

    def give_back(self, device: Device) -> None:
        self.in_use.discard(device.ref)
        for counter_set, counters in device.consumes:
            slot = self.used[(device.ref.driver, device.ref.pool, counter_set)]
            for name, value in counters.items():
                slot[name] -= value


class Allocator:
    """Allocates pods' claims against one inventory; ``commit`` records what was allocated, so
    later pods of the same pass see those devices and counters as taken."""

    def __init__(
        self,
        inventory: Inventory,
        classes: Mapping[str, Obj],
        allocated: Iterable[DeviceRef] = (),
        preferences: Preferences = PREFERENCES,
    ):
        self.inventory = inventory
        self.classes = classes
        self.preferences = preferences
        self._by_ref = {d.ref: d for d in inventory.devices}
        self._state = _State()
        for ref in allocated:
            device = self._by_ref.get(ref)
            if device is not None:
                self._state.take(device)
            else:
                self._state.in_use.add(ref)
        self._node_devices: dict[str, list[Device]] = {}
        self._match_cache: dict[tuple[str, tuple[str, ...], str], list[Device]] = {}

    # -- the state -----------------------------------------------------------------------

    def commit(self, allocations: Iterable[Allocation]) -> None:
        for allocation in allocations:
            for result in allocation.results:
                device = self._by_ref.get(result.device)
                if device is not None and device.ref not in self._state.in_use:
                    self._state.take(device)

    def release(self, refs: Iterable[DeviceRef]) -> None:
        for ref in refs:
            device = self._by_ref.get(ref)
            if device is not None and ref in self._state.in_use:
                self._state.give_back(device)

    def left(self, driver: str, pool: str) -> dict[str, dict[str, Fraction | int]]:
        """What is left of each counter set of a pool."""
        out = {}
        for (d, p, counter_set), total in self.inventory.counters.items():
            if (d, p) == (driver, pool):
                used = self._state.used.get((d, p, counter_set), {})
                out[counter_set] = {n: v - used.get(n, 0) for n, v in total.items()}
        return out

    def _fits_counters(self, device: Device) -> bool:
        for counter_set, counters in device.consumes:
            key = (device.ref.driver, device.ref.pool, counter_set)
            total = self.inventory.counters.get(key)
            if total is None:
                return False
            used = self._state.used.get(key, {})
            for name, value in counters.items():
                if total.get(name, 0) - used.get(name, 0) < value:
                    return False
        return True

    # -- the search ----------------------------------------------------------------------

    def _devices_on(self, node: Mapping[str, Any]) -> list[Device]:
        name = node["metadata"]["name"]
        found = self._node_devices.get(name)
        if found is None:
            found = self._node_devices[name] = self.inventory.on_node(node)
        return found

    def _matching(
        self, node: str, alternative: Alternative, devices: list[Device], where: str
    ) -> list[Device]:
        """The node's devices the alternative's selectors pick and whose taints it tolerates
        (kept: devices and their attributes don't change within one allocator)."""
        key = (
            node,
            tuple(s.expression for s in alternative.selectors),
            repr(alternative.tolerations),
        )
        found = self._match_cache.get(key)
        if found is not None:
            return found
        out = []
        for device in devices:
            try:
                if all(device.selected_by(s) for s in alternative.selectors):
                    out.append(device)
            except CelError as error:
                raise Unsatisfiable(f"{where}: device {device.ref.device}: {error}") from error
        found = self._match_cache[key] = [d for d in out if _usable(d, alternative)]
        return found

    def _candidates(self, devices: list[Device]) -> list[Device]:
        """``devices`` in the order their drivers' preferences give (slice order without)."""
        if not any(self.preferences.has(d.ref.driver) for d in devices):
            return devices
        pools: dict[tuple[str, str], frozenset[DeviceRef]] = {}
        lefts: dict[tuple[str, str], Mapping[str, Mapping[str, Fraction | int]]] = {}
        wrapped = []
        for device in devices:
            key = (device.ref.driver, device.ref.pool)
            if key not in pools:
                pools[key] = frozenset(r for r in self._state.in_use if (r.driver, r.pool) == key)
                lefts[key] = self.left(*key)
            wrapped.append(Candidate(device, lefts[key], pools[key]))
        return [c.device for c in self.preferences.order(wrapped)]

    def allocate(
        self, claims: Sequence[Mapping[str, Any]], node: Mapping[str, Any]
    ) -> list[Allocation]:
        """An allocation for every claim on ``node``, all or nothing; ``Unsatisfiable`` names
        the first claim and request that could not be satisfied (or a selector's error)."""
        requests = [r for claim in claims for r in requests_of(claim, self.classes)]
        search = _Search(self, requests, claims, node["metadata"]["name"], self._devices_on(node))
        try:
            found = search.solve(0)
        finally:
            for _, _, _, device in search.chosen:
                self._state.give_back(device)
        if not found:
            raise Unsatisfiable(search.failure or "no devices")
        return _allocations(claims, search.chosen, node, self.classes)


class _Search:
    """One backtracking search for one pod's requests on one node."""

    def __init__(
        self,
        allocator: Allocator,
        requests: list[Request],
        claims: Sequence[Mapping[str, Any]],
        node: str,
        devices: list[Device],
    ):
        self.allocator = allocator
        self.node = node
        self.state = allocator._state
        self.requests = requests
        self.devices = devices
        self.constraints = {
            claim_key(c): list(
                ((c.get("spec") or {}).get("devices") or {}).get("constraints") or []
            )
            for c in claims
        }
        self.chosen: list[tuple[str, str, str, Device]] = []
        """(claim, result name, device class, device) in request order."""
        self.pinned: dict[tuple[str, int], Any] = {}
        self.steps = 0
        self.failure = ""

    def _fail(self, message: str) -> None:
        if not self.failure:
            self.failure = message

    def _pin(self, request: Request, device: Device) -> list[tuple[str, int]] | None:
        """Pin the constraint values ``device`` brings; None (nothing pinned) on a mismatch."""
        newly: list[tuple[str, int]] = []
        for index in request.constraints:
            attribute = self.constraints[request.claim][index].get("matchAttribute")
            if not attribute:
                continue
            value = device.attribute(attribute)
            key = (request.claim, index)
            if value is None or (key in self.pinned and self.pinned[key] != value):
                for k in newly:
                    del self.pinned[k]
                self._fail(
                    f"claim {request.claim}, request {request.name}: no devices with the same "
                    f"{attribute}"
                )
                return None
            if key not in self.pinned:
                self.pinned[key] = value
                newly.append(key)
        return newly

    def _take(self, request: Request, alt: Alternative, device: Device) -> None:
        self.state.take(device)
        self.chosen.append((request.claim, alt.result_name, alt.class_name, device))

    def _undo(self, device: Device, newly: list[tuple[str, int]]) -> None:
        self.chosen.pop()
        self.state.give_back(device)
        for key in newly:
            del self.pinned[key]

    def solve(self, i: int) -> bool:
        if i == len(self.requests):
            return True
        request = self.requests[i]
        for alt in request.alternatives:
            where = f"claim {request.claim}, request {alt.result_name}"
            matching = self.allocator._matching(self.node, alt, self.devices, where)
            if alt.mode == "All":
                if self._all(i, request, alt, matching, where):
                    return True
                continue
            free = [d for d in matching if d.ref not in self.state.in_use]
            if len(free) < alt.count:
                self._fail(
                    f"{where}: {len(free)} of the {alt.count} matching devices it asks for are "
                    f"free ({len(matching)} match on this node)"
                )
                continue
            if self._pick(i, request, alt, self.allocator._candidates(free), 0, alt.count):
                return True
            self._fail(f"{where}: no {alt.count} matching devices fit together")
        return False

    def _all(
        self, i: int, request: Request, alt: Alternative, matching: list[Device], where: str
    ) -> bool:
        if not matching:
            self._fail(f"{where}: asks for all matching devices, and none match on this node")
            return False
        if any((d.ref.driver, d.ref.pool) in self.allocator.inventory.incomplete for d in matching):
            self._fail(f"{where}: asks for all matching devices, and a pool is incomplete")
            return False
        busy = [d for d in matching if d.ref in self.state.in_use]
        if busy:
            self._fail(
                f"{where}: asks for all {len(matching)} matching devices, and "
                f"{busy[0].ref.device} is allocated"
            )
            return False
        taken: list[tuple[Device, list[tuple[str, int]]]] = []
        ok = True
        for device in matching:
            if not self.allocator._fits_counters(device):
                self._fail(f"{where}: the counters device {device.ref.device} consumes are used up")
                ok = False
                break
            newly = self._pin(request, device)
            if newly is None:
                ok = False
                break
            self._take(request, alt, device)
            taken.append((device, newly))
        if ok and self.solve(i + 1):
            return True
        for device, newly in reversed(taken):
            self._undo(device, newly)
        return False

    def _pick(
        self,
        i: int,
        request: Request,
        alt: Alternative,
        ordered: list[Device],
        start: int,
        need: int,
    ) -> bool:
        if need == 0:
            return self.solve(i + 1)
        for j in range(start, len(ordered) - need + 1):
            device = ordered[j]
            self.steps += 1
            if self.steps > STEP_LIMIT:
                raise Unsatisfiable(
                    f"claim {request.claim}, request {alt.result_name}: gave up after "
                    f"{STEP_LIMIT} devices tried"
                )
            if device.ref in self.state.in_use:
                continue
            if not self.allocator._fits_counters(device):
                self._fail(
                    f"claim {request.claim}, request {alt.result_name}: the counters device "
                    f"{device.ref.device} consumes are used up"
                )
                continue
            newly = self._pin(request, device)
            if newly is None:
                continue
            self._take(request, alt, device)
            if self._pick(i, request, alt, ordered, j + 1, need - 1):
                return True
            self._undo(device, newly)
        return False


def _node_selector(devices: Iterable[Device], node: Mapping[str, Any]) -> Obj | None:
    """``status.allocation.nodeSelector``: the node by name when a device is local to it, a
    device's own selector, or none for devices every node reaches."""
    selector = None
    for device in devices:
        if device.node_name is not None:
            return {
                "nodeSelectorTerms": [
                    {
                        "matchFields": [
                            {
                                "key": "metadata.name",
                                "operator": "In",
                                "values": [node["metadata"]["name"]],
                            }
                        ]
                    }
                ]
            }
        if device.node_selector is not None and selector is None:
            selector = dict(device.node_selector)
    return selector


def _config(
    claim: Mapping[str, Any], used: dict[str, str], classes: Mapping[str, Obj]
) -> list[Obj]:
    """``allocation.devices.config``: each used class's config for the requests that used it,
    then the claim's own config for requests it allocated (or all, when it names none), as the
    kubelet's DRA driver reads its opaque parameters from there."""
    out: list[Obj] = []
    for result_name, class_name in used.items():
        for entry in ((classes.get(class_name) or {}).get("spec") or {}).get("config") or []:
            out.append({"source": "FromClass", "requests": [result_name], **entry})
    for entry in ((claim.get("spec") or {}).get("devices") or {}).get("config") or []:
        named = entry.get("requests") or []
        if not named or any(n in used or n == r.split("/", 1)[0] for n in named for r in used):
            out.append({"source": "FromClaim", **entry})
    return out


def _allocations(
    claims: Sequence[Mapping[str, Any]],
    chosen: list[tuple[str, str, str, Device]],
    node: Mapping[str, Any],
    classes: Mapping[str, Obj],
) -> list[Allocation]:
    by_claim: dict[str, list[tuple[str, Device]]] = {claim_key(c): [] for c in claims}
    used: dict[str, dict[str, str]] = {claim_key(c): {} for c in claims}
    for key, result_name, class_name, device in chosen:
        by_claim[key].append((result_name, device))
        used[key][result_name] = class_name
    return [
        Allocation(
            claim_key(claim),
            [Result(name, d.ref) for name, d in by_claim[claim_key(claim)]],
            _node_selector((d for _, d in by_claim[claim_key(claim)]), node),
            _config(claim, used[claim_key(claim)], classes),
        )
        for claim in claims
    ]
