"""What the ResourceSlices publish, as the allocator reads it: per driver and pool only the
slices of the latest ``pool.generation``, each device with where it is (``nodeName``,
``nodeSelector``, ``allNodes``, per slice or per device), its attributes, capacity, taints and
``consumesCounters``, and each pool's ``sharedCounters`` (the counter sets partitionable devices
draw from). A device's selector verdicts are kept with it, so one CEL expression runs once per
device however many claims ask."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from gpu_operator.sandbox.dra.cel import Selector
from gpu_operator.sandbox.dra.quantity import parse_quantity
from gpu_operator.sandbox.scheduling import node_selector_matches

Obj = dict[str, Any]
Counters = dict[str, Fraction | int]


@dataclass(frozen=True, order=True)
class DeviceRef:
    """A device as an allocation result names it."""

    driver: str
    pool: str
    device: str


@dataclass(eq=False)
class Device:
    """One device of a ResourceSlice."""

    ref: DeviceRef
    slice_name: str
    node_name: str | None
    node_selector: Mapping[str, Any] | None
    all_nodes: bool
    attributes: Mapping[str, Any]
    capacity: Mapping[str, Any]
    consumes: tuple[tuple[str, Counters], ...] = ()
    taints: tuple[Mapping[str, Any], ...] = ()
    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False)

    def on_node(self, node: Mapping[str, Any]) -> bool:
        if self.node_name is not None:
            return bool(self.node_name == node["metadata"]["name"])
        if self.node_selector is not None:
            return node_selector_matches(self.node_selector, node)
        return self.all_nodes

    def attribute(self, qualified: str) -> Any:
        """The raw value (``{"string": …}`` unwrapped) of ``domain/name``, or None."""
        domain, _, name = qualified.rpartition("/")
        raw = self.attributes.get(qualified)
        if raw is None and domain == self.ref.driver:
            raw = self.attributes.get(name)
        if not isinstance(raw, Mapping):
            return None
        return next(iter(raw.values()), None)

    def selected_by(self, selector: Selector) -> bool:
        """The selector's verdict (a ``CelError`` propagates), computed once per device."""
        verdict = self._verdicts.get(selector.expression)
        if verdict is None:
            verdict = selector.selects(self.ref.driver, self.attributes, self.capacity)
            self._verdicts[selector.expression] = verdict
        return verdict


def _number(text: str) -> Fraction | int:
    value = parse_quantity(text)
    return int(value) if value.denominator == 1 else value  # ints add up much faster


def counters_of(raw: Mapping[str, Any] | None) -> Counters:
    return {
        name: _number(str((value or {}).get("value", "0"))) for name, value in (raw or {}).items()
    }


@dataclass
class Inventory:
    """The devices of the latest pool generations, in slice order, and the pools' counters."""

    devices: list[Device] = field(default_factory=list)
    counters: dict[tuple[str, str, str], Counters] = field(default_factory=dict)
    incomplete: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def from_slices(cls, slices: Iterable[Mapping[str, Any]]) -> Inventory:
        latest: dict[tuple[str, str], int] = {}
        listed = [s for s in slices if not s.get("metadata", {}).get("deletionTimestamp")]
        for s in listed:
            spec = s.get("spec") or {}
            key = (spec.get("driver", ""), (spec.get("pool") or {}).get("name", ""))
            generation = int((spec.get("pool") or {}).get("generation", 0))
            latest[key] = max(latest.get(key, generation), generation)
        inventory = cls()
        seen: dict[tuple[str, str], int] = {}
        expected: dict[tuple[str, str], int] = {}
        for s in listed:
            spec = s.get("spec") or {}
            pool = spec.get("pool") or {}
            key = (spec.get("driver", ""), pool.get("name", ""))
            if int(pool.get("generation", 0)) != latest[key]:
                continue
            seen[key] = seen.get(key, 0) + 1
            expected[key] = int(pool.get("resourceSliceCount", 1))
            inventory._add_slice(s["metadata"]["name"], spec, key)
        inventory.incomplete = {k for k, n in seen.items() if n < expected[k]}
        return inventory

    def _add_slice(self, slice_name: str, spec: Mapping[str, Any], key: tuple[str, str]) -> None:
        driver, pool = key
        for counter_set in spec.get("sharedCounters") or []:
            self.counters[(driver, pool, counter_set["name"])] = counters_of(
                counter_set.get("counters")
            )
        for raw in spec.get("devices") or []:
            per_device = bool(spec.get("perDeviceNodeSelection"))
            where = raw if per_device else spec
            consumes = tuple(
                (c["counterSet"], counters_of(c.get("counters")))
                for c in raw.get("consumesCounters") or []
            )
            self.devices.append(
                Device(
                    ref=DeviceRef(driver, pool, raw["name"]),
                    slice_name=slice_name,
                    node_name=where.get("nodeName") or None,
                    node_selector=where.get("nodeSelector"),
                    all_nodes=bool(where.get("allNodes")),
                    attributes=raw.get("attributes") or {},
                    capacity=raw.get("capacity") or {},
                    consumes=consumes,
                    taints=tuple(raw.get("taints") or ()),
                )
            )

    def on_node(self, node: Mapping[str, Any]) -> list[Device]:
        return [d for d in self.devices if d.on_node(node)]
