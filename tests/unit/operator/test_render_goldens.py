"""Rendered objects for hand-reviewed policies match their golden files exactly (that each is a
valid object for several Kubernetes versions: tests/contract/operator/test_golden_schemas.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpu_operator.commands.render import desired_from_files, format_yaml, load_policy_file
from gpu_operator.operator.policy_v1 import deprecations

DATA = Path(__file__).parents[2] / "data" / "operator"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "policy.yaml").exists())
UPDATE = os.environ.get("GPU_OPERATOR_UPDATE_GOLDENS") == "1"


def rendered(case: str) -> str:
    policy = DATA / case / "policy.yaml"
    _, spec = load_policy_file(policy)
    desired = desired_from_files(policy, DATA / case / "nodes.yaml", "gpu-operator")
    return format_yaml(desired, deprecations(spec))


@pytest.mark.parametrize("case", CASES)
def test_the_rendered_objects_equal_the_reviewed_golden_file(case: str) -> None:
    golden = DATA / case / "expected.yaml"
    text = rendered(case)
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), (
        f"no golden for {case}: run with GPU_OPERATOR_UPDATE_GOLDENS=1 and review"
    )
    assert text == golden.read_text()
