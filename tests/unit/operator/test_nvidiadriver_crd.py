"""The NVIDIADriver CRD: the checked-in file is the one generated from the model, it is a valid
structural CRD, and its schema is upstream's field by field (types, formats, enums, defaults,
bounds, patterns, required fields, CEL rules), as are its name, short names, scope, printer
columns and status subresource; NVIDIA's sample CR fits it and a typo or a bad enum does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from gpu_operator.errors import ConfigError
from gpu_operator.operator.nvidiadriver_crd import CRD_FILE, build_crd, crd_yaml
from gpu_operator.operator.nvidiadriver_v1alpha1 import parse_nvidiadriver_spec
from gpu_operator.sandbox.apiserver.defaulting import default

DATA = Path(__file__).parents[2] / "data" / "operator"
UPSTREAM = yaml.safe_load((DATA / "upstream-nvidiadriver-crd-extract.yaml").read_text())
SAMPLE = yaml.safe_load((DATA / "upstream-nvidiadriver-sample.yaml").read_text())
CHECKED_IN = Path(__file__).parents[3] / "deployments" / "gpu-operator" / "crds" / CRD_FILE
COMPARED = (
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "x-kubernetes-validations",
    "x-kubernetes-int-or-string",
)


def facts(node: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Every schema node under ``node`` → its compared keywords (required as a set)."""
    out: dict[str, Any] = {
        path: {
            **{k: node[k] for k in COMPARED if k in node},
            "required": sorted(node.get("required") or []),
        }
    }
    for name, child in (node.get("properties") or {}).items():
        out.update(facts(child, f"{path}.{name}"))
    for key, mark in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), dict):
            out.update(facts(node[key], path + mark))
    return out


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_checked_in_crd_matches_the_model() -> None:
    assert CHECKED_IN.read_text() == crd_yaml(), "run `gpu-operator crds` to regenerate"


def test_the_schema_is_upstreams_field_by_field() -> None:
    ours, theirs = facts(schema_of(build_crd())), facts(schema_of(UPSTREAM))
    assert sorted(set(theirs) - set(ours)) == [], "upstream fields we lack"
    assert sorted(set(ours) - set(theirs)) == [], "fields upstream lacks"
    assert {p: ours[p] for p in theirs if ours[p] != theirs[p]} == {
        p: theirs[p] for p in theirs if ours[p] != theirs[p]
    }


def test_identity_printer_columns_and_status_are_upstreams() -> None:
    ours, theirs = build_crd()["spec"], UPSTREAM["spec"]
    assert build_crd()["metadata"]["name"] == "nvidiadrivers.nvidia.com"
    assert ours["names"] == theirs["names"]
    assert (ours["group"], ours["scope"]) == ("nvidia.com", "Cluster")
    for key in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
        assert ours["versions"][0][key] == theirs["versions"][0][key], key


def test_the_crd_object_is_valid_for_kubernetes() -> None:
    kubernetes_validate.validate(build_crd(), "1.35.0", strict=True)


def test_nvidias_sample_fits_the_schema_once_defaulted_and_the_model() -> None:
    schema = schema_of(build_crd())
    with pytest.raises(jsonschema.ValidationError, match="'default' is a required property"):
        jsonschema.validate(SAMPLE, schema)  # the API server fills it first
    jsonschema.validate(default(SAMPLE, schema, root=True), schema)
    spec = parse_nvidiadriver_spec(SAMPLE["spec"], source="sample")
    assert (spec.driverType, spec.version, spec.default) == ("gpu", "570.148.08", False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param({"driverType": "cuda"}, "spec.driverType", id="driverType outside its enum"),
        pytest.param({"kernelModuleType": "closed"}, "spec.kernelModuleType", id="bad enum"),
        pytest.param({"verison": "570"}, "spec.verison", id="a typo"),
        pytest.param(
            {"startupProbe": {"periodSeconds": 0}}, "spec.startupProbe.periodSeconds", id="bound"
        ),
        pytest.param(
            {"tolerations": [{"keys": "a"}]}, "spec.tolerations.0.keys", id="typo in a toleration"
        ),
    ],
)
def test_the_model_refuses_what_the_crd_refuses_naming_the_field(
    change: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_nvidiadriver_spec({**SAMPLE["spec"], **change}, source="cr")


def test_a_default_driver_with_a_node_selector_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"spec\.nodeSelector: default NVIDIADriver must not"):
        parse_nvidiadriver_spec({"default": True, "nodeSelector": {"a": "b"}}, source="cr")
