"""A pod with a ResourceClaim on a sandbox node, end to end through the real pieces: the DRA
driver serving on the node's kubelet directories and publishing to the sandbox's API server,
the node's kubelet stand-in registering it from the plugins registry, the pod runner preparing
the claim before the container starts (and retrying, with a FailedPrepareDynamicResources
Event, while the claim is not reserved for the pod), the container getting the claim's CDI
devices and holding its GPU in the node's NVML, and the claim unprepared once the pod is gone.
In the first test the claim's allocation is written by the test; in the second the sandbox
scheduler allocates it from the slice the driver published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.dra.classes import device_classes
from helpers.dra_sandbox import node_driver, running_sandbox
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(120)
NODE = "gpu-node-1"
CLAIMS = "resource.k8s.io/v1/resourceclaims"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox("hgx-h100:1", "drasb-") as running:
        yield running


@pytest.fixture
def driver(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[DraDriver, HardwareSettings]]:
    with node_driver(sandbox, NODE, tmp_path) as started:
        yield started


def _events(sandbox: Sandbox, reason: str) -> list[dict[str, Any]]:
    assert sandbox.rest is not None
    return [e for e in sandbox.rest.list("events", "default") if e.get("reason") == reason]


def test_a_pod_gets_its_claimed_gpu_and_gives_it_back(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    rest = sandbox.rest
    assert rest is not None
    dra_driver, hardware = driver
    kubelet = sandbox.nodes[NODE].kubelet
    assert kubelet is not None
    assert kubelet.dra is not None
    assert wait_until(lambda: "gpu.nvidia.com" in kubelet.dra.plugins)  # type: ignore[union-attr]
    assert dra_driver.published.wait(10)
    assert rest.get("resource.k8s.io/v1/resourceslices", f"{NODE}-gpu.nvidia.com") is not None

    claim = rest.create(
        CLAIMS,
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "train-gpu", "namespace": "default"},
            "spec": {
                "devices": {
                    "requests": [{"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]
                }
            },
        },
        "default",
    )
    pod = rest.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "train", "namespace": "default"},
            "spec": {
                "nodeName": NODE,
                "restartPolicy": "Never",
                "resourceClaims": [{"name": "gpu", "resourceClaimName": "train-gpu"}],
                "containers": [
                    {
                        "name": "main",
                        "image": "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
                        "resources": {"claims": [{"name": "gpu"}]},
                    }
                ],
            },
        },
        "default",
    )
    # Not reserved for the pod yet: the kubelet waits and says why.
    assert wait_until(lambda: bool(_events(sandbox, "FailedPrepareDynamicResources")), 30)
    assert rest.get("pods", "train", "default")["status"].get("phase") != "Running"  # type: ignore[index]

    rest.patch(
        CLAIMS,
        "train-gpu",
        {
            "status": {
                "allocation": {
                    "devices": {
                        "results": [
                            {
                                "request": "gpus",
                                "driver": "gpu.nvidia.com",
                                "pool": NODE,
                                "device": "gpu-2",
                            }
                        ]
                    }
                },
                "reservedFor": [
                    {"resource": "pods", "name": "train", "uid": pod["metadata"]["uid"]}
                ],
            }
        },
        "default",
        subresource="status",
    )
    assert wait_until(
        lambda: (
            (rest.get("pods", "train", "default") or {}).get("status", {}).get("phase") == "Running"
        ),
        30,
    )
    uid = claim["metadata"]["uid"]
    spec_file = sandbox.nodes[NODE].root / f"etc/cdi/k8s.gpu.nvidia.com-claim_{uid}.yaml"
    assert spec_file.exists()
    with Nvml.open(hardware) as nvml:
        gpu2 = nvml.gpu(2).uuid
        held = [i for i in range(nvml.device_count()) if nvml.processes(i)]
    assert held == [2]
    worker = next(iter(sandbox.nodes[NODE].runner.workers.values()))
    env = worker.main[0].spec.env
    assert env["GPU_OPERATOR_CDI_DEVICES"] == f"k8s.gpu.nvidia.com/claim={uid}-gpu-2"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert worker.main[0].devices == (gpu2,)

    rest.delete("pods", "train", "default", grace_period_s=0)
    assert wait_until(lambda: not spec_file.exists(), 30)
    with Nvml.open(hardware) as nvml:
        assert not any(nvml.processes(i) for i in range(nvml.device_count()))


def test_the_scheduler_allocates_from_the_drivers_slice_and_the_pod_runs_on_it(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    """NVIDIA's DeviceClass, a claim template asking for one H100 by attribute, a pod without a
    node: the sandbox scheduler allocates a device the driver published, the kubelet prepares
    it, the workload holds that GPU; deleting the pod gives it back."""
    rest = sandbox.rest
    assert rest is not None
    dra_driver, hardware = driver
    assert dra_driver.published.wait(10)
    for device_class in device_classes():
        rest.create("resource.k8s.io/v1/deviceclasses", device_class)
    rest.create(
        "resource.k8s.io/v1/resourceclaimtemplates",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "one-h100", "namespace": "default"},
            "spec": {
                "spec": {
                    "devices": {
                        "requests": [
                            {
                                "name": "gpu",
                                "exactly": {
                                    "deviceClassName": "gpu.nvidia.com",
                                    "selectors": [
                                        {
                                            "cel": {
                                                "expression": "device.attributes['gpu.nvidia.com']"
                                                ".productName == 'NVIDIA H100 80GB HBM3'"
                                            }
                                        }
                                    ],
                                },
                            }
                        ]
                    }
                }
            },
        },
        "default",
    )
    rest.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "job", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-h100"}],
                "containers": [
                    {
                        "name": "main",
                        "image": "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
                        "resources": {"claims": [{"name": "gpu"}]},
                    }
                ],
            },
        },
        "default",
    )

    def phase() -> str:
        return str(((rest.get("pods", "job", "default") or {}).get("status") or {}).get("phase"))

    assert wait_until(lambda: phase() == "Running", 60), phase()
    pod = rest.get("pods", "job", "default")
    assert pod is not None
    (status,) = pod["status"]["resourceClaimStatuses"]
    claim = rest.get(CLAIMS, status["resourceClaimName"], "default")
    assert claim is not None
    (result,) = claim["status"]["allocation"]["devices"]["results"]
    assert (result["driver"], result["pool"]) == ("gpu.nvidia.com", NODE)
    minor = int(result["device"].removeprefix("gpu-"))
    with Nvml.open(hardware) as nvml:
        held = [g.minor_number for g in nvml.gpus() if nvml.processes(g.index)]
    assert held == [minor]
    spec_file = (
        sandbox.nodes[NODE].root
        / f"etc/cdi/k8s.gpu.nvidia.com-claim_{claim['metadata']['uid']}.yaml"
    )
    assert spec_file.exists()

    rest.delete("pods", "job", "default", grace_period_s=0)
    assert wait_until(lambda: not spec_file.exists(), 30)
    with Nvml.open(hardware) as nvml:
        assert not any(nvml.processes(i) for i in range(nvml.device_count()))


def test_a_gpu_tainted_by_an_xid_is_not_allocated(
    sandbox: Sandbox, driver: tuple[DraDriver, HardwareSettings]
) -> None:
    """XIDs on seven of the eight GPUs: their taints reach the slice, and the scheduler gives a
    new claim the one GPU left."""
    rest = sandbox.rest
    assert rest is not None
    _, hardware = driver
    assert hardware.sim is not None
    store = StateStore(Path(hardware.sim))
    for gpu in range(7):
        faults.inject_xid(store, gpu, 48)

    def tainted() -> list[str]:
        body = rest.get("resource.k8s.io/v1/resourceslices", f"{NODE}-gpu.nvidia.com") or {}
        return [d["name"] for d in body.get("spec", {}).get("devices", []) if d.get("taints")]

    assert wait_until(lambda: len(tainted()) == 7, 30), tainted()
    for device_class in device_classes():
        rest.create("resource.k8s.io/v1/deviceclasses", device_class)
    rest.create(
        CLAIMS,
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "any-gpu", "namespace": "default"},
            "spec": {
                "devices": {
                    "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]
                }
            },
        },
        "default",
    )
    rest.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "survivor", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "resourceClaims": [{"name": "gpu", "resourceClaimName": "any-gpu"}],
                "containers": [
                    {
                        "name": "main",
                        "image": "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
                        "resources": {"claims": [{"name": "gpu"}]},
                    }
                ],
            },
        },
        "default",
    )

    def allocated() -> list[str]:
        claim = rest.get(CLAIMS, "any-gpu", "default") or {}
        results = ((claim.get("status") or {}).get("allocation") or {}).get("devices", {})
        return [r["device"] for r in results.get("results", [])]

    assert wait_until(lambda: bool(allocated()), 30)
    assert allocated() == ["gpu-7"]
