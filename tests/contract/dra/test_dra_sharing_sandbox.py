"""Sharing through the whole sandbox path: the DRA driver serving a simulated H100 node's kubelet
directories and publishing to the API server, the sandbox scheduler allocating a claim with an
opaque ``GpuConfig`` (and reserving it for every pod that names it), the kubelet stand-in
preparing it once per node and unpreparing it after the last pod holding it is gone, the
containers getting the claim's CDI edits. The GPU's time-slice is read back through the NVML
facade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu import compute_policy as policy
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.dra.classes import device_classes
from helpers.dra_sandbox import create_device_classes, node_driver, running_sandbox
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(180)
NODE = "gpu-node-1"
CLAIMS = "resource.k8s.io/v1/resourceclaims"
CUDA = "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox("hgx-h100:1", "drash-") as running:
        yield running


@pytest.fixture
def driver(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[DraDriver, HardwareSettings]]:
    with node_driver(sandbox, NODE, tmp_path) as (running, hardware):
        assert running.published.wait(10)
        create_device_classes(sandbox)
        yield running, hardware


def shared_claim(name: str, sharing: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "devices": {
                "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}],
                "config": [
                    {
                        "requests": ["gpu"],
                        "opaque": {
                            "driver": "gpu.nvidia.com",
                            "parameters": {
                                "apiVersion": "resource.nvidia.com/v1beta1",
                                "kind": "GpuConfig",
                                "sharing": sharing,
                            },
                        },
                    }
                ],
            }
        },
    }


def pod(name: str, claim: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "resourceClaims": [{"name": "gpu", "resourceClaimName": claim}],
            "containers": [
                {"name": "main", "image": CUDA, "resources": {"claims": [{"name": "gpu"}]}}
            ],
        },
    }


def phase(sandbox: Sandbox, name: str) -> str:
    assert sandbox.rest is not None
    found = sandbox.rest.get("pods", name, "default") or {}
    return str((found.get("status") or {}).get("phase"))


def worker_env(sandbox: Sandbox, name: str) -> dict[str, str]:
    workers = sandbox.nodes[NODE].runner.workers.values()
    worker = next(w for w in workers if w.name == name)
    return dict(worker.main[0].spec.env)


def test_two_pods_share_one_time_sliced_claim_until_the_last_is_gone(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    rest = sandbox.rest
    assert rest is not None
    _, hardware = driver
    kubelet = sandbox.nodes[NODE].kubelet
    assert kubelet is not None
    dra = kubelet.dra
    assert dra is not None
    claim = rest.create(
        CLAIMS,
        shared_claim(
            "shared-gpu", {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}
        ),
        "default",
    )
    uid = claim["metadata"]["uid"]
    first = rest.create("pods", pod("first", "shared-gpu"), "default")
    second = rest.create("pods", pod("second", "shared-gpu"), "default")
    assert wait_until(lambda: phase(sandbox, "first") == phase(sandbox, "second") == "Running", 60)

    stored = rest.get(CLAIMS, "shared-gpu", "default")
    assert stored is not None
    assert {r["uid"] for r in stored["status"]["reservedFor"]} == {
        first["metadata"]["uid"],
        second["metadata"]["uid"],
    }
    (result,) = stored["status"]["allocation"]["devices"]["results"]
    minor = int(result["device"].removeprefix("gpu-"))
    cdi_id = f"k8s.gpu.nvidia.com/claim={uid}-gpu-{minor}"
    assert worker_env(sandbox, "first")["GPU_OPERATOR_CDI_DEVICES"] == cdi_id
    assert worker_env(sandbox, "second")["GPU_OPERATOR_CDI_DEVICES"] == cdi_id
    assert [c for c in dra.prepare_calls if uid in c] == [[uid]]  # prepared once on the node
    with Nvml.open(hardware) as nvml:
        index = next(g.index for g in nvml.gpus() if g.minor_number == minor)
        assert len(nvml.processes(index)) == 2  # both pods' workloads on the one GPU
        assert [i for i in range(nvml.device_count()) if nvml.processes(i)] == [index]
        assert policy.timeslice(nvml, index) == 3  # Long
        assert policy.compute_mode(nvml, index) == "DEFAULT"

    spec_file = sandbox.nodes[NODE].root / f"etc/cdi/k8s.gpu.nvidia.com-claim_{uid}.yaml"
    rest.delete("pods", "first", "default", grace_period_s=0)
    assert wait_until(lambda: first["metadata"]["uid"] not in dra.prepared, 30)
    assert spec_file.exists()  # the second pod still holds the claim: still prepared
    assert dra.claim_pods[uid] == {second["metadata"]["uid"]}
    assert phase(sandbox, "second") == "Running"
    with Nvml.open(hardware) as nvml:
        assert policy.timeslice(nvml, index) == 3

    rest.delete("pods", "second", "default", grace_period_s=0)
    assert wait_until(lambda: uid not in dra.claim_pods, 30)  # unprepared, the answer read
    assert not spec_file.exists()
    with Nvml.open(hardware) as nvml:
        assert policy.timeslice(nvml, index) == 0
        assert not any(nvml.processes(i) for i in range(nvml.device_count()))


def test_an_mps_claims_containers_get_the_daemons_pipe(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    rest = sandbox.rest
    assert rest is not None
    dra_driver, hardware = driver
    claim = rest.create(
        CLAIMS,
        shared_claim(
            "mps-gpu",
            {
                "strategy": "MPS",
                "mpsConfig": {
                    "defaultActiveThreadPercentage": 30,
                    "defaultPinnedDeviceMemoryLimit": "8Gi",
                },
            },
        ),
        "default",
    )
    uid = claim["metadata"]["uid"]
    rest.create("pods", pod("mps-user", "mps-gpu"), "default")
    assert wait_until(lambda: phase(sandbox, "mps-user") == "Running", 60)
    env = worker_env(sandbox, "mps-user")
    assert env["CUDA_MPS_PIPE_DIRECTORY"] == "/tmp/nvidia-mps"
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "30"
    assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=8192M"
    (daemon,) = (dra_driver.settings.plugin_dir / "mps").iterdir()
    assert daemon.name.startswith(f"{uid}-")
    spec_file = sandbox.nodes[NODE].root / f"etc/cdi/k8s.gpu.nvidia.com-claim_{uid}.yaml"
    (device,) = yaml.safe_load(spec_file.read_text())["devices"]
    assert {m["containerPath"]: m["hostPath"] for m in device["containerEdits"]["mounts"]} == {
        "/dev/shm": str(daemon / "shm"),
        "/tmp/nvidia-mps": str(daemon / "pipe"),
    }
    minor = int(device["name"].rsplit("-", 1)[1])
    with Nvml.open(hardware) as nvml:
        index = next(g.index for g in nvml.gpus() if g.minor_number == minor)
        assert policy.compute_mode(nvml, index) == "EXCLUSIVE_PROCESS"

    rest.delete("pods", "mps-user", "default", grace_period_s=0)
    assert wait_until(lambda: not spec_file.exists(), 30)
    assert not daemon.exists()
    with Nvml.open(hardware) as nvml:
        assert policy.compute_mode(nvml, index) == "DEFAULT"


def test_a_wrong_config_keeps_the_pod_waiting_with_the_field_named(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    rest = sandbox.rest
    assert rest is not None
    rest.create(
        CLAIMS,
        shared_claim(
            "bad-gpu", {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Forever"}}
        ),
        "default",
    )
    rest.create("pods", pod("waits", "bad-gpu"), "default")

    def said() -> list[str]:
        events = rest.list("events", "default")
        return [
            str(e.get("message"))
            for e in events
            if e.get("reason") == "FailedPrepareDynamicResources"
            and "unknown time-slice interval" in str(e.get("message"))
        ]

    assert wait_until(lambda: bool(said()), 30)
    assert "sharing.timeSlicingConfig.interval: unknown time-slice interval: Forever" in said()[0]
    assert phase(sandbox, "waits") != "Running"
    assert not list((sandbox.nodes[NODE].root / "etc/cdi").glob("k8s.gpu.nvidia.com-claim_*"))


def test_a_device_class_config_applies_to_the_claims_that_use_the_class(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    """A DeviceClass carrying a GpuConfig (``spec.config``): the scheduler copies it into the
    allocation (``FromClass``) and the driver applies it to a claim that says nothing itself."""
    rest = sandbox.rest
    assert rest is not None
    _, hardware = driver
    (gpu_class,) = [c for c in device_classes() if c["metadata"]["name"] == "gpu.nvidia.com"]
    params = shared_claim(
        "x", {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Medium"}}
    )
    config = params["spec"]["devices"]["config"][0]
    rest.create(
        "resource.k8s.io/v1/deviceclasses",
        {
            **gpu_class,
            "metadata": {"name": "timesliced.gpu.example.com"},
            "spec": {**gpu_class["spec"], "config": [{"opaque": config["opaque"]}]},
        },
    )
    plain = shared_claim("class-gpu", {})
    plain["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"] = (
        "timesliced.gpu.example.com"
    )
    del plain["spec"]["devices"]["config"]
    claim = rest.create(CLAIMS, plain, "default")
    rest.create("pods", pod("classy", "class-gpu"), "default")
    assert wait_until(lambda: phase(sandbox, "classy") == "Running", 60)
    stored = rest.get(CLAIMS, "class-gpu", "default")
    assert stored is not None
    (entry,) = stored["status"]["allocation"]["devices"]["config"]
    assert entry["source"] == "FromClass"
    (result,) = stored["status"]["allocation"]["devices"]["results"]
    minor = int(result["device"].removeprefix("gpu-"))
    with Nvml.open(hardware) as nvml:
        index = next(g.index for g in nvml.gpus() if g.minor_number == minor)
        assert policy.timeslice(nvml, index) == 2  # Medium

    spec_file = (
        sandbox.nodes[NODE].root
        / f"etc/cdi/k8s.gpu.nvidia.com-claim_{claim['metadata']['uid']}.yaml"
    )
    rest.delete("pods", "classy", "default", grace_period_s=0)
    assert wait_until(lambda: not spec_file.exists(), 30)
    with Nvml.open(hardware) as nvml:
        assert policy.timeslice(nvml, index) == 0
