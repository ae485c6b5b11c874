"""The layout planner: its proposals are placeable and meet the demand whenever an exhaustive
search over small clusters says the demand can be met, with no more stranded slices than the
best the search finds; uniform proposals use the shipped config names."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_operator.errors import ConfigError
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.placement import solve
from gpu_operator.mig.planner import ClusterPlan, GpuModel, Node, parse_demand, plan_cluster
from helpers.mig_oracle import achievable
from helpers.mig_tables import by_name, profiles_of

MODELS = {
    "A100-SXM4-40GB": 0x20B010DE,
    "A100-SXM4-80GB": 0x20B210DE,
    "H200-141GB": 0x233510DE,
    "A30-24GB": 0x20B710DE,
}


def model(key: str) -> GpuModel:
    return GpuModel(key, MODELS[key], profiles_of(key))


def assert_placeable(plan: ClusterPlan, nodes: list[Node]) -> None:
    for node, node_plan in zip(nodes, plan.nodes, strict=True):
        for gpu, layout in zip(node.gpus, node_plan.layouts, strict=True):
            if layout is not None:
                names = [n for n, k in layout for _ in range(k)]
                solve(gpu.profiles, by_name(gpu.name, *names))


def test_the_issues_example_is_met_and_explained() -> None:
    nodes = [Node("a100-node", (model("A100-SXM4-80GB"),) * 4)]
    plan = plan_cluster(parse_demand("1g.10gb=10,3g.40gb=2"), nodes, default_spec())
    assert plan.satisfied
    assert plan.provided["1g.10gb"] >= 10
    assert plan.provided["3g.40gb"] >= 2
    assert plan.explanation[-1].startswith("demand 2×3g.40gb + 10×1g.10gb: met;")
    assert plan.nodes[0].custom is not None
    assert_placeable(plan, nodes)


def test_a_uniform_proposal_uses_the_shipped_config_name() -> None:
    nodes = [Node("n1", (model("H200-141GB"),) * 2)]
    plan = plan_cluster(parse_demand("1g.18gb=4,2g.35gb=2,3g.71gb=2"), nodes, default_spec())
    assert plan.nodes[0].config == "all-balanced"
    assert plan.stranded_slices == 0, "balanced uses every memory and compute slice"


def test_nodes_without_demand_are_labelled_all_disabled_and_left_whole() -> None:
    nodes = [Node("busy", (model("A30-24GB"),)), Node("idle", (model("A30-24GB"),))]
    plan = plan_cluster(parse_demand("4g.24gb=1"), nodes, default_spec())
    assert [p.config for p in plan.nodes] == ["all-4g.24gb", "all-disabled"]


def test_a_demand_larger_than_the_cluster_reports_what_is_missing() -> None:
    plan = plan_cluster(parse_demand("3g.20gb=5"), [Node("n", (model("A100-SXM4-40GB"),) * 2)])
    assert plan.unmet == {"3g.20gb": 1}
    assert "NOT met, short of 3g.20gb" in plan.explanation[-1]


@pytest.mark.parametrize("text", ["1g.10gb", "1g.10gb=x", "1c.3g.40gb=2", "1g.10gb=0", "1q.5gb=1"])
def test_malformed_demands_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_demand(text)


def exhaustive(demand: dict[str, int], gpus: list[str]) -> tuple[bool, int]:
    """Whether some choice of one achievable layout (or none) per GPU meets the demand, and the
    least stranded slices among the choices that meet it."""
    options = []
    for key in gpus:
        m = model(key)
        layouts: list[Counter[str] | None] = [None]
        for multiset in achievable(key):
            counts = Counter(dict(multiset))
            if counts and set(counts) <= set(demand):
                layouts.append(counts)
        options.append((m, layouts))
    best: int | None = None
    for combo in itertools.product(*(layouts for _, layouts in options)):
        total: Counter[str] = Counter()
        for c in combo:
            total.update(c or {})
        if any(total[n] < k for n, k in demand.items()):
            continue
        remaining = dict(demand)
        stranded = 0
        for (m, _), c in zip(options, combo, strict=True):
            if c is None:
                continue
            useful = 0
            for name, k in c.items():
                p = next(p for p in m.profiles if p.name == name)
                used = min(k, remaining[name])
                remaining[name] -= used
                useful += used * (p.memory_slices + p.slice_count)
            stranded += m.capacity - useful
        best = stranded if best is None else min(best, stranded)
    return best is not None, best or 0


@st.composite
def small_clusters(draw: st.DrawFn) -> tuple[dict[str, int], list[str]]:
    key = draw(st.sampled_from(["A100-SXM4-40GB", "A30-24GB", "H200-141GB"]))
    gpus = [key] * draw(st.integers(1, 2))
    names = sorted({p.name for p in profiles_of(key)})
    wanted = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    return {n: draw(st.integers(1, 4)) for n in wanted}, gpus


@settings(max_examples=60, deadline=None)
@given(small_clusters())
def test_the_planner_meets_every_demand_an_exhaustive_search_can_meet_with_least_stranding(
    case: tuple[dict[str, int], list[str]],
) -> None:
    demand, gpus = case
    nodes = [Node("n", tuple(model(k) for k in gpus))]
    plan = plan_cluster(demand, nodes)
    possible, least = exhaustive(demand, gpus)
    assert plan.satisfied is possible
    assert_placeable(plan, nodes)
    if possible:
        assert all(plan.provided.get(n, 0) >= k for n, k in demand.items())
        assert plan.stranded_slices == least
