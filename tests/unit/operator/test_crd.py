"""The checked-in CRD is the one generated from the model, it is a valid structural CRD with
upstream's identity, and upstream CRs validate against its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from gpu_operator.operator.crd import CRD_FILE, build_crd, crd_yaml
from helpers import fastyaml, schemas

UPSTREAM_CR = (Path(__file__).parents[2] / "data" / "operator" / "upstream-cr.yaml").read_text()
CHECKED_IN = Path(__file__).parents[3] / "deployments" / "gpu-operator" / "crds" / CRD_FILE


def test_the_checked_in_crd_matches_the_model() -> None:
    assert CHECKED_IN.read_text() == crd_yaml(), "run `gpu-operator crds` to regenerate"


def test_the_crd_keeps_upstream_name_scope_status_and_printer_columns() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == "clusterpolicies.nvidia.com"
    assert crd["spec"]["scope"] == "Cluster"
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Status", "Age"]
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["required"] == [
        "operator", "daemonsets", "driver", "toolkit", "devicePlugin", "dcgm", "dcgmExporter",
        "gfd", "nodeStatusExporter",
    ]  # fmt: skip
    assert schema["properties"]["status"]["properties"]["state"]["enum"] == [
        "ignored",
        "ready",
        "notReady",
    ]


def _walk(node: Any, path: str = "") -> list[str]:
    """Places that break the structural-schema rules Kubernetes enforces."""
    bad = []
    if isinstance(node, dict):
        if "$ref" in node or "$defs" in node or node.get("additionalProperties") is False:
            bad.append(path)
        if "properties" in node and node.get("type") != "object":
            bad.append(path + " (properties without type object)")
        if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            bad.append(path + " (anyOf)")
        for key, value in node.items():
            bad += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            bad += _walk(value, f"{path}[{i}]")
    return bad


def test_the_schema_is_structural() -> None:
    assert _walk(build_crd()["spec"]["versions"][0]["schema"]) == []


def test_the_crd_object_is_valid_for_kubernetes() -> None:
    kubernetes_validate.validate(build_crd(), "1.35.0", strict=True)


def test_an_upstream_cr_validates_against_the_generated_schema() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schemas.validate(fastyaml.load(UPSTREAM_CR), schema)


def test_a_bad_enum_fails_the_generated_schema() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cr = fastyaml.load(UPSTREAM_CR)
    cr["spec"]["driver"]["kernelModuleType"] = "closed"
    with pytest.raises(jsonschema.ValidationError) as caught:
        schemas.validate(cr, schema)
    assert list(caught.value.path) == ["spec", "driver", "kernelModuleType"]
