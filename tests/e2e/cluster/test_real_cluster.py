"""The seed story's result, checked on a real cluster: runs only when ``KUBECONFIG`` names a
cluster with gpu-operator installed (skipped otherwise). Read-only unless asked:

    KUBECONFIG=~/.kube/config pytest tests/e2e/cluster
    GPU_OPERATOR_E2E_MIG_CONFIG=all-balanced …   # also check every GPU node has that layout
    GPU_OPERATOR_E2E_WORKLOAD=1 …                # also run a pod on one GPU device, then delete it
    GPU_OPERATOR_E2E_CUDA_IMAGE=…   # its image (default nvcr.io/nvidia/cuda:12.4.1-base-ubi8)

The sandbox's end-to-end suite runs this file against a sandbox through its kubeconfig, so it is
known to work there; on a real cluster it is the user's check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube.models.core_v1 import Container, PodSpec, ResourceRequirements
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from gpu_operator.kube import KubeSettings, build_client

KUBECONFIG = os.environ.get("KUBECONFIG", "")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG or not all(Path(p).is_file() for p in KUBECONFIG.split(os.pathsep)),
    reason="set KUBECONFIG to a cluster with gpu-operator installed to run these",
)
CUDA_IMAGE = os.environ.get("GPU_OPERATOR_E2E_CUDA_IMAGE", "nvcr.io/nvidia/cuda:12.4.1-base-ubi8")
POD, NAMESPACE = "gpu-operator-e2e-workload", "default"


def status() -> dict[str, Any]:
    gpu_operator = Path(sys.executable).parent / "gpu-operator"
    done = subprocess.run(
        [str(gpu_operator), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(90)
def test_the_cluster_policy_is_ready_and_every_gpu_node_runs_its_operands() -> None:
    report = status()
    assert report["policy"]["state"] == "ready", report["policy"]["problems"]
    assert report["nodes"], "no GPU nodes found"
    for node in report["nodes"]:
        assert node["blocking"] == [], f"{node['name']}: {node['blocking']}"
        assert node["resources"], f"{node['name']} advertises no nvidia.com resources"
        assert set(node["operands"].values()) <= {"Running", "Completed"}, node["operands"]


@pytest.mark.timeout(90)
def test_every_gpu_node_has_the_expected_mig_layout_when_one_is_named() -> None:
    wanted = os.environ.get("GPU_OPERATOR_E2E_MIG_CONFIG")
    if not wanted:
        pytest.skip("set GPU_OPERATOR_E2E_MIG_CONFIG (e.g. all-balanced) to check the layout")
    for node in status()["nodes"]:
        assert (node["mig_config"], node["mig_state"]) == (wanted, "success"), node["name"]
        if wanted != "all-disabled":
            migs = [
                r for r, n in node["resources"].items() if r.startswith("nvidia.com/mig-") and n
            ]
            assert migs, f"{node['name']} advertises no MIG device under {wanted}"


@pytest.mark.timeout(240)
def test_a_pod_asking_for_one_gpu_device_is_admitted_and_runs() -> None:
    if os.environ.get("GPU_OPERATOR_E2E_WORKLOAD") != "1":
        pytest.skip("set GPU_OPERATOR_E2E_WORKLOAD=1 to create (and then delete) a GPU pod")
    node = status()["nodes"][0]
    resource = sorted(r for r, n in node["resources"].items() if n)[-1]
    client = build_client(KubeSettings(kubeconfig=Path(KUBECONFIG.split(os.pathsep)[0])))
    pod = Pod(
        metadata=ObjectMeta(name=POD, namespace=NAMESPACE),
        spec=PodSpec(
            restartPolicy="Never",
            nodeSelector={"kubernetes.io/hostname": node["name"]},
            containers=[
                Container(
                    name="cuda",
                    image=CUDA_IMAGE,
                    command=["sleep", "3600"],
                    resources=ResourceRequirements(limits={resource: "1"}),
                )
            ],
        ),
    )
    client.create(pod)
    try:
        deadline = time.monotonic() + 180
        phase = ""
        while time.monotonic() < deadline:
            live = client.get(Pod, POD, namespace=NAMESPACE)
            phase = (live.status.phase if live.status else "") or ""
            if phase == "Running":
                break
            assert phase in ("", "Pending"), f"{POD} went {phase}: {live.status}"
            time.sleep(1)
        assert phase == "Running", f"{POD} on {node['name']} asking for {resource} is {phase}"
    finally:
        client.delete(Pod, POD, namespace=NAMESPACE)
        client.close()
