"""Every object of the golden renderings (tests/data/operator/*/expected.yaml) is a valid object
for several Kubernetes versions, checked strictly against their published schemas
(``kubernetes-validate``, offline): seconds per version, so in the contract tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DATA = Path(__file__).parents[2] / "data" / "operator"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "policy.yaml").exists())
KUBERNETES_VERSIONS = ["1.33.0", "1.35.0", "1.37.0"]


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
