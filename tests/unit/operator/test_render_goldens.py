"""Rendered objects for hand-reviewed policies match their golden files exactly, and every one
of them is a valid object for several Kubernetes versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gpu_operator.commands.render import desired_from_files, format_yaml, load_policy_file
from gpu_operator.operator.policy_v1 import deprecations

DATA = Path(__file__).parents[2] / "data" / "operator"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "policy.yaml").exists())
UPDATE = os.environ.get("GPU_OPERATOR_UPDATE_GOLDENS") == "1"
KUBERNETES_VERSIONS = ["1.33.0", "1.35.0", "1.37.0"]


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


def _builtin_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for case in CASES:
        for doc in yaml.safe_load_all((DATA / case / "expected.yaml").read_text()):
            if doc and doc["apiVersion"] != "monitoring.coreos.com/v1":
                found.append((f"{case}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_golden_object_is_valid_for_the_kubernetes_version(version: str) -> None:
    objects = _builtin_objects()
    assert len(objects) > 40
    for where, obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.message} at {list(error.path)}")
