"""Where pods may run: selectors, node affinity, taints, extended resources, template hashes."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.sandbox.scheduling import node_fits, resource_fit, template_hash

Obj = dict[str, Any]


def node(
    labels: dict[str, str] | None = None, taints: list[Obj] | None = None, **alloc: str
) -> Obj:
    return {
        "metadata": {"name": "gpu-1", "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {
            "allocatable": {k.replace("_", "/", 1).replace("__", "."): v for k, v in alloc.items()}
        },
    }


def affinity(*expressions: Obj) -> Obj:
    term = {"matchExpressions": list(expressions)}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }


@pytest.mark.parametrize(
    ("spec", "labels", "fits"),
    [
        pytest.param(
            {"nodeSelector": {"nvidia.com/gpu.deploy.driver": "true"}},
            {"nvidia.com/gpu.deploy.driver": "true"},
            True,
            id="selector matches",
        ),
        pytest.param(
            {"nodeSelector": {"nvidia.com/gpu.deploy.driver": "true"}},
            {"nvidia.com/gpu.deploy.driver": "false"},
            False,
            id="selector value differs",
        ),
        pytest.param(
            {"affinity": affinity({"key": "os", "operator": "In", "values": ["rocky"]})},
            {"os": "rocky"},
            True,
            id="affinity In",
        ),
        pytest.param(
            {"affinity": affinity({"key": "os", "operator": "NotIn", "values": ["rocky"]})},
            {"os": "rocky"},
            False,
            id="affinity NotIn",
        ),
        pytest.param(
            {"affinity": affinity({"key": "gpu", "operator": "Exists"})},
            {},
            False,
            id="affinity Exists on a missing label",
        ),
        pytest.param(
            {"affinity": affinity({"key": "gpu", "operator": "DoesNotExist"})},
            {},
            True,
            id="affinity DoesNotExist",
        ),
        pytest.param(
            {"affinity": affinity({"key": "n", "operator": "Gt", "values": ["3"]})},
            {"n": "4"},
            True,
            id="affinity Gt",
        ),
    ],
)
def test_selectors_and_required_node_affinity_decide_eligibility(
    spec: Obj, labels: dict[str, str], fits: bool
) -> None:
    assert (node_fits(spec, node(labels)) is None) is fits


def test_a_taint_keeps_pods_off_unless_tolerated() -> None:
    tainted = node(taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}])
    assert "untolerated taint" in (node_fits({}, tainted) or "")
    tolerating = {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    }
    assert node_fits(tolerating, tainted) is None
    assert node_fits({"tolerations": [{"operator": "Exists"}]}, tainted) is None
    wrong_effect = {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]
    }
    assert node_fits(wrong_effect, tainted) is not None


def gpu_pod(resource: str, count: int, phase: str = "Running") -> Obj:
    return {
        "spec": {"containers": [{"resources": {"limits": {resource: count}}}]},
        "status": {"phase": phase},
    }


def test_extended_resources_must_cover_the_pods_already_bound_to_the_node() -> None:
    target = {
        "metadata": {"name": "gpu-1"},
        "status": {"allocatable": {"nvidia.com/mig-3g.20gb": "2"}},
    }
    want = gpu_pod("nvidia.com/mig-3g.20gb", 1)["spec"]
    assert resource_fit(want, target, [gpu_pod("nvidia.com/mig-3g.20gb", 1)]) is None
    busy = [gpu_pod("nvidia.com/mig-3g.20gb", 1), gpu_pod("nvidia.com/mig-3g.20gb", 1)]
    assert resource_fit(want, target, busy) == "Insufficient nvidia.com/mig-3g.20gb"
    finished = [gpu_pod("nvidia.com/mig-3g.20gb", 2, phase="Succeeded")]
    assert resource_fit(want, target, finished) is None


def test_the_template_hash_changes_with_the_template_and_only_then() -> None:
    template = {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}
    same = {"spec": {"containers": [{"image": "x:1", "name": "a"}]}}
    changed = {"spec": {"containers": [{"name": "a", "image": "x:2"}]}}
    assert template_hash(template) == template_hash(same)
    assert template_hash(template) != template_hash(changed)
