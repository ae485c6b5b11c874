"""The API server emulator's ``resource.k8s.io/v1``: discovery, the four kinds with their
scopes, v1 defaults, the validation users meet (with the real server's messages), the claim
status subresource, the immutable claim spec, slice field selectors, printer columns, and a
pod's ``spec.resourceClaims`` checked against its containers' ``resources.claims``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.apiserver.protobuf import MAGIC, decode_body
from gpu_operator.sandbox.rest import ApiError, Rest
from helpers.dra import CLASSES, Obj, claim, exactly, gpu, node_slice, pod

V1 = "resource.k8s.io/v1"


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    client = Rest(server_thread.url)
    yield client
    client.close()


def refused(call: object) -> str:
    assert callable(call)
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == 422, caught.value
    return str(caught.value)


def test_discovery_lists_the_four_kinds_and_the_claim_status(rest: Rest) -> None:
    doc = rest.request("GET", "/apis/resource.k8s.io/v1")
    kinds = {(r["name"], r["kind"], r["namespaced"]) for r in doc["resources"]}
    assert kinds == {
        ("deviceclasses", "DeviceClass", False),
        ("resourceclaims", "ResourceClaim", True),
        ("resourceclaims/status", "ResourceClaim", True),
        ("resourceclaimtemplates", "ResourceClaimTemplate", True),
        ("resourceslices", "ResourceSlice", False),
    }
    groups = rest.request("GET", "/apis")["groups"]
    assert {"groupVersion": "resource.k8s.io/v1", "version": "v1"} in [
        v for g in groups for v in g["versions"]
    ]


def test_requests_get_v1_defaults(rest: Rest) -> None:
    sub = {"name": "one", "deviceClassName": "gpu.nvidia.com"}
    made = rest.create(
        f"{V1}/resourceclaims",
        claim("c", exactly("gpu"), {"name": "alt", "firstAvailable": [sub]}),
        "default",
    )
    requests = made["spec"]["devices"]["requests"]
    assert requests[0]["exactly"] == {
        "deviceClassName": "gpu.nvidia.com",
        "allocationMode": "ExactCount",
        "count": 1,
    }
    assert requests[1]["firstAvailable"][0]["allocationMode"] == "ExactCount"
    all_mode = rest.create(
        f"{V1}/resourceclaims", claim("d", exactly("gpu", allocationMode="All")), "default"
    )
    assert "count" not in all_mode["spec"]["devices"]["requests"][0]["exactly"]


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        pytest.param(
            {"name": "gpu"},
            "spec.devices.requests[0]: Required value: exactly one of `exactly` or "
            "`firstAvailable` is required",
            id="neither exactly nor firstAvailable",
        ),
        pytest.param(
            {
                **exactly("gpu"),
                "firstAvailable": [{"name": "a", "deviceClassName": "gpu.nvidia.com"}],
            },
            "but multiple fields are set",
            id="both",
        ),
        pytest.param(
            exactly("gpu", count=0),
            "spec.devices.requests[0].exactly.count: Invalid value: 0: must be greater than zero",
            id="count zero",
        ),
        pytest.param(
            exactly("gpu", allocationMode="All", count=2),
            "spec.devices.requests[0].exactly.count: Invalid value: 2: must not be specified "
            "when allocationMode is 'All'",
            id="count with All",
        ),
        pytest.param(
            exactly("gpu", allocationMode="Some"),
            'spec.devices.requests[0].exactly.allocationMode: Unsupported value: "Some": '
            'supported values: "All", "ExactCount"',
            id="unknown allocationMode",
        ),
        pytest.param(
            {"name": "gpu", "exactly": {}},
            "spec.devices.requests[0].exactly.deviceClassName: Required value",
            id="no device class",
        ),
        pytest.param(
            exactly("gpu", "gpu.nvidia.com", "device.driver =="),
            "spec.devices.requests[0].exactly.selectors[0].cel.expression: Invalid value: "
            '"device.driver ==": compilation failed',
            id="CEL that does not compile",
        ),
        pytest.param(
            exactly("GPU"),
            "spec.devices.requests[0].name: Invalid value",
            id="request name not a DNS label",
        ),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    rest: Rest, request_body: Obj, message: str
) -> None:
    text = refused(lambda: rest.create(f"{V1}/resourceclaims", claim("c", request_body), "default"))
    assert 'ResourceClaim.resource.k8s.io "c" is invalid' in text
    assert message in text
    assert rest.get(f"{V1}/resourceclaims", "c", "default") is None


def test_duplicate_request_names_are_refused(rest: Rest) -> None:
    text = refused(
        lambda: rest.create(
            f"{V1}/resourceclaims", claim("c", exactly("gpu"), exactly("gpu")), "default"
        )
    )
    assert 'spec.devices.requests[1].name: Duplicate value: "gpu"' in text


def test_a_template_is_checked_as_a_claim_spec(rest: Rest) -> None:
    body = {
        "metadata": {"name": "t"},
        "spec": {"spec": {"devices": {"requests": [exactly("gpu", count=-1)]}}},
    }
    text = refused(lambda: rest.create(f"{V1}/resourceclaimtemplates", body, "default"))
    assert "spec.spec.devices.requests[0].exactly.count: Invalid value: -1" in text


def test_status_is_written_through_the_subresource_only(rest: Rest) -> None:
    body = claim("c", exactly("gpu"))
    body["status"] = {"reservedFor": [{"resource": "pods", "name": "x", "uid": "1"}]}
    made = rest.create(f"{V1}/resourceclaims", body, "default")
    assert "status" not in made  # a create's status is dropped, as the real server does
    result = {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "p", "device": "gpu-0"}
    written = rest.patch(
        f"{V1}/resourceclaims",
        "c",
        {"status": {"allocation": {"devices": {"results": [result]}}}},
        "default",
        subresource="status",
    )
    assert written["status"]["allocation"]["devices"]["results"] == [result]
    ignored = rest.patch(f"{V1}/resourceclaims", "c", {"status": {"allocation": None}}, "default")
    assert ignored["status"]["allocation"]["devices"]["results"] == [result]


def test_a_claim_spec_is_immutable(rest: Rest) -> None:
    rest.create(f"{V1}/resourceclaims", claim("c", exactly("gpu")), "default")
    text = refused(
        lambda: rest.patch(
            f"{V1}/resourceclaims",
            "c",
            {"spec": {"devices": {"requests": [exactly("gpu", count=2)]}}},
            "default",
        )
    )
    assert "spec: Invalid value: field is immutable" in text
    same = rest.patch(f"{V1}/resourceclaims", "c", {"metadata": {"labels": {"a": "b"}}}, "default")
    assert same["metadata"]["labels"] == {"a": "b"}


def test_a_slice_says_where_its_devices_are_exactly_once(rest: Rest) -> None:
    body = node_slice("node-a", [gpu(0)])
    body["spec"]["allNodes"] = True
    text = refused(lambda: rest.create(f"{V1}/resourceslices", body))
    assert "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection`" in text
    del body["spec"]["pool"]["resourceSliceCount"]
    text = refused(lambda: rest.create(f"{V1}/resourceslices", body))
    assert "spec.pool.resourceSliceCount: Required value" in text


def test_counters_must_name_a_counter_set_of_the_slice(rest: Rest) -> None:
    device = {**gpu(0), "consumesCounters": [{"counterSet": "nope", "counters": {}}]}
    counters = [{"name": "gpu-0-counters", "counters": {"memory": {"value": "80Gi"}}}]
    body = node_slice("node-a", [device], counters=counters)
    text = refused(lambda: rest.create(f"{V1}/resourceslices", body))
    assert 'spec.devices[0].consumesCounters[0].counterSet: Invalid value: "nope"' in text


def test_slices_are_selected_by_node_and_driver(rest: Rest) -> None:
    rest.create(f"{V1}/resourceslices", node_slice("node-a", [gpu(0)]))
    rest.create(f"{V1}/resourceslices", node_slice("node-b", [gpu(0)]))
    found = rest.list(f"{V1}/resourceslices", fields="spec.nodeName=node-b")
    assert [s["spec"]["nodeName"] for s in found] == ["node-b"]
    assert len(rest.list(f"{V1}/resourceslices", fields="spec.driver=gpu.nvidia.com")) == 2


def test_a_device_class_selector_must_compile(rest: Rest) -> None:
    rest.create(f"{V1}/deviceclasses", CLASSES["gpu.nvidia.com"])
    bad = {"metadata": {"name": "bad"}, "spec": {"selectors": [{"cel": {"expression": "1 +"}}]}}
    text = refused(lambda: rest.create(f"{V1}/deviceclasses", bad))
    assert "spec.selectors[0].cel.expression: Invalid value" in text


def test_printer_columns_are_upstreams(rest: Rest, server_thread: ServerThread) -> None:
    rest.create(f"{V1}/resourceslices", node_slice("node-a", [gpu(0)]))
    rest.create(f"{V1}/resourceclaims", claim("c", exactly("gpu")), "default")
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for path, columns, cells in (
        (
            "/apis/resource.k8s.io/v1/resourceslices",
            ["Name", "Node", "Driver", "Pool", "Age"],
            ["node-a-gpu.nvidia.com-1", "node-a", "gpu.nvidia.com", "node-a"],
        ),
        ("/apis/resource.k8s.io/v1/resourceclaims", ["Name", "State", "Age"], ["c", "pending"]),
    ):
        asked = urllib.request.Request(server_thread.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(asked) as response:
            table = json.loads(response.read())
        assert [c["name"] for c in table["columnDefinitions"]] == columns
        assert table["rows"][0]["cells"][:-1] == cells


def test_a_pod_names_its_claims_and_containers_use_only_those(rest: Rest) -> None:
    good = pod("p", {"gpu": {"resourceClaimName": "c"}})
    made = rest.create("pods", good, "default")
    assert made["spec"]["resourceClaims"] == [{"name": "gpu", "resourceClaimName": "c"}]
    assert made["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    bad = pod("q", {"gpu": {"resourceClaimName": "c"}})
    bad["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpux"}]
    text = refused(lambda: rest.create("pods", bad, "default"))
    assert (
        'spec.containers[0].resources.claims[0].name: Unsupported value: "gpux": '
        'supported values: "gpu"' in text
    )
    both = pod("r", {"gpu": {"resourceClaimName": "c", "resourceClaimTemplateName": "t"}})
    assert "at most one of `resourceClaimName` or `resourceClaimTemplateName`" in refused(
        lambda: rest.create("pods", both, "default")
    )
    neither = pod("s", {"gpu": {}})
    assert "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`" in refused(
        lambda: rest.create("pods", neither, "default")
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_a_protobuf_pod_keeps_its_claims() -> None:
    """PodSpec field 39 (``resourceClaims``: name 1, resourceClaimName 3,
    resourceClaimTemplateName 4) and ResourceRequirements field 3 (``claims``)."""
    claims = _field(3, _field(1, b"gpu")) + _field(3, _field(1, b"shared") + _field(2, b"gpu"))
    container = _field(1, b"main") + _field(2, b"busybox") + _field(8, claims)
    spec = (
        _field(2, container)
        + _field(39, _field(1, b"gpu") + _field(4, b"one-gpu"))
        + _field(39, _field(1, b"shared") + _field(3, b"single-gpu"))
    )
    raw = _field(1, _field(1, b"p")) + _field(2, spec)
    body = MAGIC + _field(1, _field(1, b"v1") + _field(2, b"Pod")) + _field(2, raw)
    pod_obj = decode_body(body)
    assert pod_obj["spec"]["resourceClaims"] == [
        {"name": "gpu", "resourceClaimTemplateName": "one-gpu"},
        {"name": "shared", "resourceClaimName": "single-gpu"},
    ]
    assert pod_obj["spec"]["containers"][0]["resources"]["claims"] == [
        {"name": "gpu"},
        {"name": "shared", "request": "gpu"},
    ]


def test_a_slice_of_partitionable_devices_holds_at_most_64(rest: Rest) -> None:
    use = [{"counterSet": "gpu-0", "counters": {"memory": {"value": "1Gi"}}}]
    devices = [{**gpu(i), "consumesCounters": use} for i in range(65)]
    text = refused(lambda: rest.create(f"{V1}/resourceslices", node_slice("n", devices)))
    assert "spec.devices: Too many: 65: must have at most 64 items" in text
    rest.create(f"{V1}/resourceslices", node_slice("n", devices[:64]))
    plain = [gpu(i) for i in range(100)]  # no counters, no taints: up to 128
    rest.create(f"{V1}/resourceslices", node_slice("m", plain))


def test_counter_sets_and_devices_are_published_in_separate_slices(rest: Rest) -> None:
    """Kubernetes 1.35: ``sharedCounters`` and ``devices`` may not share a slice; a counter set
    holds at most 32 counters."""
    counters = [{"name": "gpu-0", "counters": {"memory": {"value": "80Gi"}}}]
    use = [{"counterSet": "gpu-0", "counters": {"memory": {"value": "1Gi"}}}]
    both = node_slice("n", [{**gpu(0), "consumesCounters": use}], counters=counters)
    text = refused(lambda: rest.create(f"{V1}/resourceslices", both))
    assert 'spec: Invalid value: "": only one of `sharedCounters` or `devices` is allowed' in text
    alone = node_slice("n", [], counters=counters, name="n-counters")
    del alone["spec"]["devices"]
    rest.create(f"{V1}/resourceslices", alone)
    many = [{"name": "big", "counters": {f"c{i}": {"value": "1"} for i in range(33)}}]
    crowded = node_slice("n", [], counters=many, name="n-crowded")
    del crowded["spec"]["devices"]
    text = refused(lambda: rest.create(f"{V1}/resourceslices", crowded))
    assert "spec.sharedCounters[0].counters: Too many: 33: must have at most 32 items" in text
    greedy = [{"counterSet": "big", "counters": {f"c{i}": {"value": "1"} for i in range(33)}}]
    device = {**gpu(0), "consumesCounters": greedy}
    text = refused(lambda: rest.create(f"{V1}/resourceslices", node_slice("m", [device])))
    assert "spec.devices[0].consumesCounters[0].counters: Too many: 33" in text


def test_a_device_has_at_most_32_attributes_and_capacities(rest: Rest) -> None:
    device = gpu(0)
    device["attributes"] |= {f"extra{i}": {"int": i} for i in range(28)}
    text = refused(lambda: rest.create(f"{V1}/resourceslices", node_slice("n", [device])))
    assert (
        "spec.devices[0]: Invalid value: 34: the total number of attributes and capacities" in text
    )


def test_a_template_spec_and_a_slices_driver_pool_and_node_are_immutable(rest: Rest) -> None:
    body = {
        "metadata": {"name": "t"},
        "spec": {"spec": {"devices": {"requests": [exactly("gpu")]}}},
    }
    rest.create(f"{V1}/resourceclaimtemplates", body, "default")
    changed = {"spec": {"spec": {"devices": {"requests": [exactly("gpu", count=2)]}}}}
    text = refused(lambda: rest.patch(f"{V1}/resourceclaimtemplates", "t", changed, "default"))
    assert "spec: Invalid value: field is immutable" in text

    rest.create(f"{V1}/resourceslices", node_slice("node-a", [gpu(0)], name="s"))
    moved = {"spec": {"nodeName": "node-b", "pool": {"name": "node-b"}}}
    text = refused(lambda: rest.patch(f"{V1}/resourceslices", "s", moved))
    assert 'spec.pool.name: Invalid value: "node-b": field is immutable' in text
    assert 'spec.nodeName: Invalid value: "node-b": field is immutable' in text
    republished = {"spec": {"pool": {"generation": 2}, "devices": [gpu(0), gpu(1)]}}
    updated = rest.patch(f"{V1}/resourceslices", "s", republished)
    assert len(updated["spec"]["devices"]) == 2
