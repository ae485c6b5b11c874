"""The emulator's pure parts: patch formats, selectors, field ownership, schema validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpu_operator.sandbox.apiserver import apply as ssa
from gpu_operator.sandbox.apiserver.patching import json_patch, merge_patch, strategic_merge
from gpu_operator.sandbox.apiserver.selectors import (
    Selector,
    parse_field_selector,
    parse_label_selector,
)
from gpu_operator.sandbox.apiserver.status import ApiStatus
from gpu_operator.sandbox.apiserver.validation import check_schema, prune, unknown_fields

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=2), json_values, max_size=4)


@given(objects, objects)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


def test_merge_patch_null_deletes_and_lists_replace() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None}, "l": [3]}) == {
        "a": {"c": 2},
        "l": [3],
    }


@pytest.mark.parametrize(
    ("ops", "result"),
    [
        pytest.param(
            [{"op": "add", "path": "/l/-", "value": 3}], {"a": 1, "l": [1, 2, 3]}, id="append"
        ),
        pytest.param([{"op": "remove", "path": "/l/0"}], {"a": 1, "l": [2]}, id="remove index"),
        pytest.param(
            [{"op": "replace", "path": "/a", "value": 5}], {"a": 5, "l": [1, 2]}, id="replace"
        ),
        pytest.param(
            [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1, "l": [1, 2]}, id="move"
        ),
        pytest.param(
            [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1, "l": [1, 2]}, id="copy"
        ),
        pytest.param(
            [{"op": "add", "path": "/x~1y", "value": 0}],
            {"a": 1, "l": [1, 2], "x/y": 0},
            id="escaped slash",
        ),
    ],
)
def test_json_patch_operations(ops: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert json_patch({"a": 1, "l": [1, 2]}, ops) == result


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param(
            [{"op": "test", "path": "/a", "value": 2}], "test failed: /a", id="test fails"
        ),
        pytest.param(
            [{"op": "remove", "path": "/nope"}], "'/nope' does not exist", id="missing path"
        ),
        pytest.param([{"op": "jump", "path": "/a"}], "unknown op 'jump'", id="unknown op"),
    ],
)
def test_json_patch_failures_are_422_naming_the_problem(
    ops: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ApiStatus) as excinfo:
        json_patch({"a": 1}, ops)
    assert excinfo.value.code == 422
    assert message in excinfo.value.message


def test_strategic_merge_uses_merge_keys() -> None:
    live = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "a:1",
                    "env": [{"name": "X", "value": "1"}],
                    "volumeMounts": [{"mountPath": "/m", "name": "v"}],
                    "ports": [{"containerPort": 80}],
                }
            ],
            "tolerations": [{"key": "k1"}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        }
    }
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "Y", "value": "2"}],
                    "volumeMounts": [{"mountPath": "/m", "readOnly": True}],
                    "ports": [{"containerPort": 81}],
                },
                {"name": "b", "image": "b:1"},
            ],
            "tolerations": [{"key": "k2"}],
            "volumes": [{"name": "v", "$patch": "delete"}],
        }
    }
    merged = strategic_merge(live, patch)["spec"]
    a, b = merged["containers"]
    assert a["image"] == "a:1"
    assert b == {"name": "b", "image": "b:1"}
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert a["volumeMounts"] == [{"mountPath": "/m", "name": "v", "readOnly": True}]
    assert a["ports"] == [{"containerPort": 80}, {"containerPort": 81}]
    assert merged["tolerations"] == [{"key": "k2"}], "tolerations have no merge key: replaced"
    assert merged["volumes"] == []


def test_strategic_merge_finalizers_are_a_set() -> None:
    assert strategic_merge({"f": 1, "finalizers": ["a"]}, {"finalizers": ["a", "b"]}) == {
        "f": 1,
        "finalizers": ["a", "b"],
    }


def obj(labels: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels}, **fields}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1,b!=2", {"a": "1", "b": "3"}, True),
        ("a!=1", {}, True),
        ("a in (1, 2),c notin (x)", {"a": "2"}, True),
        ("a in (1,2)", {"a": "3"}, False),
        ("nvidia.com/gpu.present", {"nvidia.com/gpu.present": "true"}, True),
        ("!nvidia.com/gpu.present", {"nvidia.com/gpu.present": "true"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert Selector(parse_label_selector(selector)).matches(obj(labels)) is matches


@pytest.mark.parametrize("bad", ["a in 1", "=x", "a=(b", "a b c"])
def test_malformed_label_selector_is_400_quoting_it(bad: str) -> None:
    with pytest.raises(ApiStatus) as excinfo:
        parse_label_selector(bad)
    assert excinfo.value.code == 400
    assert repr(bad) in excinfo.value.message


def test_field_selector_matches_nested_and_missing_fields() -> None:
    supported = frozenset({"spec.nodeName", "status.phase", "metadata.name"})
    pod = obj({}, spec={"nodeName": "gpu-1"}, status={"phase": "Running"})
    assert Selector(
        fields=parse_field_selector("spec.nodeName=gpu-1,status.phase!=Failed", supported)
    ).matches(pod)
    assert Selector(fields=parse_field_selector("spec.nodeName=", supported)).matches(obj({}))


def test_field_sets_and_fields_v1_round_trip() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
        "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k"}]},
    }
    paths = ssa.field_set(config)
    assert ssa.to_fields_v1(paths) == {
        "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {'v:"x"': {}}},
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}},
            "f:tolerations": {},
        },
    }
    assert ssa.from_fields_v1(ssa.to_fields_v1(paths)) == paths
    assert ssa.path_text(("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")) == (
        '.spec.containers[name="c"].image'
    )


def test_apply_conflict_names_every_field_and_manager() -> None:
    live, managed = ssa.apply(
        None,
        {"metadata": {"name": "x"}, "data": {"a": "1", "b": "1"}},
        manager="one",
        force=False,
        subresource="",
        api_version="v1",
        now="t",
    )
    live["metadata"]["managedFields"] = managed
    with pytest.raises(ApiStatus) as excinfo:
        ssa.apply(
            live,
            {"metadata": {"name": "x"}, "data": {"a": "2", "b": "2"}},
            manager="two",
            force=False,
            subresource="",
            api_version="v1",
            now="t",
        )
    assert excinfo.value.code == 409
    assert excinfo.value.message == (
        'Apply failed with 2 conflicts: conflicts with "one" using v1:\n- .data.a\n- .data.b'
    )


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    },
}


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        pytest.param({}, "spec.replicas", "Required value", id="required"),
        pytest.param({"replicas": 11}, "spec.replicas", "must be <= 10", id="maximum"),
        pytest.param(
            {"replicas": True},
            "spec.replicas",
            "must be of type integer",
            id="bool is not an integer",
        ),
        pytest.param({"replicas": 1, "name": "ABC"}, "spec.name", "should match", id="pattern"),
        pytest.param(
            {"replicas": 1, "tags": ["a", 1]},
            "spec.tags[1]",
            "must be of type string",
            id="array items",
        ),
        pytest.param(
            {"replicas": 1, "tags": ["a", "b", "c"]}, "spec.tags", "at most 2", id="maxItems"
        ),
        pytest.param(
            {"replicas": 1, "port": 1.5}, "spec.port", "integer or a string", id="int-or-string"
        ),
        pytest.param(
            {"replicas": 1, "labels": {"a": 1}},
            "spec.labels.a",
            "must be of type string",
            id="additionalProperties",
        ),
    ],
)
def test_schema_errors_name_the_field(spec: dict[str, Any], field: str, problem: str) -> None:
    causes = check_schema({"spec": spec}, SCHEMA)
    assert any(path == field and problem in text for path, text in causes), causes


def test_pruning_keeps_declared_and_preserved_fields_only() -> None:
    value = {
        "spec": {"replicas": 1, "junk": 1, "free": {"anything": {"x": 1}}, "labels": {"k": "v"}},
        "extra": 2,
    }
    assert prune(value, SCHEMA, root=True) == {
        "spec": {"replicas": 1, "free": {"anything": {"x": 1}}, "labels": {"k": "v"}}
    }
    assert unknown_fields(value, SCHEMA) == ["spec.junk", "extra"]
