"""The layout planner (beyond upstream): given a demand for MIG devices (``1g.10gb=10,
3g.40gb=2``) and the cluster's nodes, propose each node's MIG config label value — a
shipped named config where one fits, else a generated custom config — that meets the demand with
the least stranded memory and compute, and say why.

Pure. Per GPU model, every layout of demanded profiles that the placement solver can place is a
candidate; a dynamic programme over the GPUs (state: the demand still unmet) minimises, in this
order: unmet demand, stranded slices (memory + compute slices of partitioned GPUs that serve no
demanded device), GPUs partitioned. GPUs left out stay whole (``mig-enabled: false``).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInfo, GpuInstanceProfile
from gpu_operator.mig.placement import fits, full_profile, memory_slices
from gpu_operator.mig.profiles import format_counts, parse_profile, sort_key
from gpu_operator.mig.spec_v1 import MigConfigEntry, Spec

EXACT_STATES = 20_000
"""Above this many (demand state × GPU) pairs the planner goes greedy."""

Layout = tuple[tuple[str, int], ...]
"""A multiset of profile names, sorted: what one GPU provides."""


@dataclass(frozen=True)
class GpuModel:
    name: str
    pci_device_id: int
    profiles: tuple[GpuInstanceProfile, ...]

    @property
    def capacity(self) -> int:
        """Memory + compute slices: what can be stranded."""
        if not self.profiles:
            return 0
        return memory_slices(self.profiles) + full_profile(self.profiles).slice_count


@dataclass(frozen=True)
class Node:
    name: str
    gpus: tuple[GpuModel, ...]


@dataclass(frozen=True)
class NodePlan:
    node: str
    config: str
    """The value for the node's MIG config label (``names.MIG_CONFIG_LABEL``)."""
    layouts: tuple[Layout | None, ...]
    """Per GPU index: what it provides, ``None`` when left whole."""
    custom: Spec | None = None
    """The generated config when no named one fits (config name = ``config``)."""
    why: str = ""


@dataclass(frozen=True)
class ClusterPlan:
    nodes: tuple[NodePlan, ...]
    provided: dict[str, int]
    unmet: dict[str, int]
    stranded_slices: int
    partitioned_gpus: int
    explanation: list[str] = field(default_factory=list)

    @property
    def satisfied(self) -> bool:
        return not self.unmet


def parse_demand(text: str) -> dict[str, int]:
    """``1g.10gb=10,3g.40gb=2`` → ``{"1g.10gb": 10, "3g.40gb": 2}``."""
    demand: dict[str, int] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        name, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise ConfigError(f"--demand: {item!r} must be PROFILE=COUNT, e.g. 1g.10gb=4")
        profile = str(parse_profile(name.strip()))
        if parse_profile(profile).is_ci:
            raise ConfigError(f"--demand: {profile}: plan whole GPU instances, not CI profiles")
        demand[profile] = demand.get(profile, 0) + int(count)
    if not any(demand.values()):
        raise ConfigError("--demand: ask for at least one MIG device")
    return demand


def _slices(p: GpuInstanceProfile) -> int:
    return p.memory_slices + p.slice_count


@functools.cache
def candidates(model: GpuModel, names: tuple[str, ...]) -> tuple[Layout, ...]:
    """Every placeable non-empty multiset of this model's profiles named in the demand."""
    wanted = [p for p in model.profiles if p.name in names]
    out: list[Layout] = []

    def grow(i: int, chosen: list[GpuInstanceProfile]) -> None:
        if i == len(wanted):
            if chosen:
                out.append(tuple(sorted(Counter(p.name for p in chosen).items())))
            return
        p = wanted[i]
        for n in range(p.instance_count + 1):
            trial = chosen + [p] * n
            if n and not fits(model.profiles, trial):
                break
            grow(i + 1, trial)

    grow(0, [])
    # Keep maximal layouts only: a sub-multiset never meets more demand or strands less.
    counters = [Counter(dict(layout)) for layout in out]
    return tuple(
        layout
        for layout, c in zip(out, counters, strict=True)
        if not any(o != c and all(o[n] >= k for n, k in c.items()) for o in counters)
    )


def plan_cluster(
    demand: dict[str, int], nodes: Sequence[Node], named: Spec | None = None
) -> ClusterPlan:
    """Choose a layout per GPU (or none) meeting ``demand`` best; label values per node."""
    names = tuple(sorted(demand))
    gpus = [(n, i, g) for n in nodes for i, g in enumerate(n.gpus) if g.profiles]
    slices = {p.name: _slices(p) for _, _, g in gpus for p in g.profiles if p.name in demand}
    unknown = [n for n in names if n not in slices]
    start = tuple(demand[n] for n in names)
    states = 1
    for count in start:
        states *= count + 1
    exact = states * max(1, len(gpus)) <= EXACT_STATES

    @functools.cache
    def best(k: int, remaining: tuple[int, ...]) -> tuple[tuple[int, int, int], Layout | None]:
        """Cost (unmet, stranded, partitioned) of GPUs k.. and the layout of GPU k."""
        if k == len(gpus):
            unmet = sum(r * slices.get(n, 1) for n, r in zip(names, remaining, strict=True))
            return (unmet, 0, 0), None
        model = gpus[k][2]
        if not exact:
            return (0, 0, 0), _greedy_layout(model, names, remaining, slices)
        whole = best(k + 1, remaining)[0]
        choice: tuple[tuple[int, int, int], Layout | None] = (whole, None)
        for layout in candidates(model, names):
            counts = dict(layout)
            after = tuple(
                max(0, r - counts.get(n, 0)) for n, r in zip(names, remaining, strict=True)
            )
            if after == remaining:
                continue
            useful = _useful(names, remaining, after, slices)
            rest = best(k + 1, after)[0]
            cost = (rest[0], rest[1] + model.capacity - useful, rest[2] + 1)
            # Ties go to partitioning this GPU, so partitions gather on the first nodes.
            if cost <= choice[0] and (choice[1] is None or cost < choice[0]):
                choice = (cost, layout)
        return choice

    chosen: dict[tuple[str, int], Layout | None] = {}
    remaining = start
    for k, (node, index, _) in enumerate(gpus):
        layout = best(k, remaining)[1]
        chosen[(node.name, index)] = layout
        counts = dict(layout or ())
        remaining = tuple(
            max(0, r - counts.get(n, 0)) for n, r in zip(names, remaining, strict=True)
        )
    best.cache_clear()

    def evaluate(
        choice: dict[tuple[str, int], Layout | None],
    ) -> tuple[int, int, int, tuple[int, ...]]:
        left, stranded, partitioned = start, 0, 0
        for node, index, model in gpus:
            counts = dict(choice[(node.name, index)] or ())
            if not counts:
                continue
            after = tuple(max(0, r - counts.get(n, 0)) for n, r in zip(names, left, strict=True))
            stranded += model.capacity - _useful(names, left, after, slices)
            partitioned += 1
            left = after
        return sum(left), stranded, partitioned, left

    # Same cost with one layout on every GPU of a node? Then the node gets a named config.
    for node in nodes:
        if len(set(node.gpus)) != 1 or not node.gpus[0].profiles:
            continue
        cost = evaluate(chosen)[:2]
        for layout in candidates(node.gpus[0], names):
            trial = {**chosen, **{(node.name, i): layout for i in range(len(node.gpus))}}
            if evaluate(trial)[:2] <= cost:
                chosen = trial
                break
    _, stranded, partitioned, remaining = evaluate(chosen)

    provided: Counter[str] = Counter()
    node_plans = []
    for node in nodes:
        layouts = tuple(chosen.get((node.name, i)) for i in range(len(node.gpus)))
        for layout in layouts:
            provided.update(dict(layout or ()))
        node_plans.append(_label(node, layouts, named))
    unmet = {n: r for n, r in zip(names, remaining, strict=True) if r}
    explanation = [p.why for p in node_plans]
    summary = "met" if not unmet else f"NOT met, short of {format_counts(unmet)}"
    explanation.append(
        f"demand {format_counts(demand)}: {summary}; {partitioned} GPU(s) partitioned, "
        f"{stranded} memory+compute slice(s) stranded on them"
        + ("" if exact else " (large demand: greedy per GPU, not proven optimal)")
    )
    if unknown:
        explanation.append(f"no GPU in the cluster offers {', '.join(unknown)}")
    return ClusterPlan(tuple(node_plans), dict(provided), unmet, stranded, partitioned, explanation)


def _useful(
    names: tuple[str, ...], before: tuple[int, ...], after: tuple[int, ...], slices: dict[str, int]
) -> int:
    return sum((b - a) * slices[n] for n, b, a in zip(names, before, after, strict=True))


def _greedy_layout(
    model: GpuModel, names: tuple[str, ...], remaining: tuple[int, ...], slices: dict[str, int]
) -> Layout | None:
    """The layout serving the most remaining demand (in slices); fewest instances on ties."""
    best: tuple[int, int] = (0, 0)
    chosen = None
    for layout in candidates(model, names):
        counts = dict(layout)
        after = tuple(max(0, r - counts.get(n, 0)) for n, r in zip(names, remaining, strict=True))
        score = (_useful(names, remaining, after, slices), -sum(counts.values()))
        if score[0] > 0 and (chosen is None or score > best):
            best, chosen = score, layout
    return chosen


def _entry_for(
    model: GpuModel, index: int, entries: Sequence[MigConfigEntry]
) -> MigConfigEntry | None:
    info = GpuInfo(
        index,
        "",
        model.name,
        "",
        model.pci_device_id,
        0,
        0,
        0,
        (0, 0),
        "",
        None,
        "",
        None,
        None,
        True,
        None,
    )
    matching = [e for e in entries if e.matches(info)]
    return matching[-1] if matching else None


def _label(node: Node, layouts: tuple[Layout | None, ...], named: Spec | None) -> NodePlan:
    used = [layout for layout in layouts if layout is not None]
    described = ", ".join(
        f"GPU {i}: {format_counts(dict(layout)) if layout else 'whole'}"
        for i, layout in enumerate(layouts)
    )
    if not used:
        return NodePlan(
            node.name,
            "all-disabled",
            layouts,
            None,
            f"{node.name}: all-disabled (no demand placed here; GPUs stay whole)",
        )
    uniform = len(used) == len(node.gpus) and len(set(used)) == 1
    if uniform and named is not None:
        for name, entries in named.mig_configs.items():
            ok = True
            for i, model in enumerate(node.gpus):
                entry = _entry_for(model, i, entries)
                wanted = tuple(sorted((entry.wanted() if entry else {}).items()))
                if entry is None or not entry.mig_enabled or wanted != used[0]:
                    ok = False
                    break
            if ok:
                return NodePlan(
                    node.name,
                    name,
                    layouts,
                    None,
                    f"{node.name}: {name} (every GPU: {format_counts(dict(used[0]))})",
                )
    config = f"custom-{node.name}"
    items: list[dict[str, Any]] = []
    for i, layout in enumerate(layouts):
        if layout is None:
            items.append({"devices": [i], "mig-enabled": False})
        else:
            devices = dict(sorted(layout, key=lambda kv: sort_key(kv[0])))
            items.append({"devices": [i], "mig-enabled": True, "mig-devices": devices})
    spec = Spec.model_validate({"version": "v1", "mig-configs": {config: items}})
    return NodePlan(
        node.name, config, layouts, spec, f"{node.name}: {config} (generated; {described})"
    )
