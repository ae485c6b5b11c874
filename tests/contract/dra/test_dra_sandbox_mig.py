"""Dynamic MIG end to end on a sandbox of two simulated HGX H100 nodes with MIG mode on and the
DRA driver (``FEATURE_GATES=DynamicMIG=true``) serving on each: a pod whose claim asks for a
``mig.nvidia.com`` device of profile ``3g.40gb`` is allocated one by the sandbox scheduler (in
the placement solver's order), the driver creates exactly that GPU/compute instance, the
container gets its CDI device and its workload holds the MIG device in the node's NVML, the
kubelet's PodResources lists the claim's device for the container and the exporter's attribution
puts the pod on that GPU instance; deleting the pod removes the instance. Then NVIDIA's
documented creation-order case (``-cgi 19,19,14,9`` fails when the small instances scatter)
through the scheduler and the driver: claims for 1g, 1g, 2g and 3g are all served, on one GPU,
where the solver places them."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.exporter.pods import pod_map
from gpu_operator.exporter.sampling import Sampler
from gpu_operator.exporter.settings import DeviceSelection
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.kube import KubeSettings, build_client
from gpu_operator.podresources import list_pod_devices
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.rest import Rest
from helpers.dra_driver import make_driver_root
from helpers.dra_sandbox import (
    create_device_classes,
    node_hardware,
    running_sandbox,
    start_node_driver,
)
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(240)
NODES = ("gpu-node-1", "gpu-node-2")
CLAIMS = "resource.k8s.io/v1/resourceclaims"
IMAGE = "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox("hgx-h100:2", "drasbm-") as running:
        yield running


@pytest.fixture
def drivers(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, HardwareSettings]]:
    """The DRA driver with dynamic MIG on both nodes, every GPU in MIG mode: node → NVML."""
    started: list[DraDriver] = []
    hardware: dict[str, HardwareSettings] = {}
    client = build_client(KubeSettings(kubeconfig=sandbox.kubeconfig))
    driver_root = make_driver_root(tmp_path / "driver", "580.159.04")
    for name in NODES:
        settings = node_hardware(sandbox, name)
        with Nvml.open(settings) as nvml:
            for index in range(nvml.device_count()):
                assert nvml.set_mig_mode(index, True)[0].enabled
        started.append(
            start_node_driver(
                sandbox, name, settings, driver_root, client, FEATURE_GATES="DynamicMIG=true"
            )
        )
        hardware[name] = settings
    try:
        assert all(d.published.wait(20) for d in started)
        create_device_classes(sandbox)
        yield hardware
    finally:
        for driver in started:
            driver.stop(clean=True)
        client.close()


def _template(rest: Rest, name: str, profile: str) -> None:
    selector = f"device.attributes['gpu.nvidia.com'].profile == '{profile}'"
    request = {
        "name": "mig",
        "exactly": {
            "deviceClassName": "mig.nvidia.com",
            "selectors": [{"cel": {"expression": selector}}],
        },
    }
    rest.create(
        "resource.k8s.io/v1/resourceclaimtemplates",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"spec": {"devices": {"requests": [request]}}},
        },
        "default",
    )


def _pod(rest: Rest, name: str, template: str, node_selector: dict[str, str] | None = None) -> None:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "resourceClaims": [{"name": "mig", "resourceClaimTemplateName": template}],
        "containers": [
            {"name": "main", "image": IMAGE, "resources": {"claims": [{"name": "mig"}]}}
        ],
    }
    if node_selector:
        spec["nodeSelector"] = node_selector
    rest.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        },
        "default",
    )


def _phase(rest: Rest, name: str) -> str:
    return str(((rest.get("pods", name, "default") or {}).get("status") or {}).get("phase"))


def _result(rest: Rest, pod_name: str) -> dict[str, Any]:
    pod = rest.get("pods", pod_name, "default")
    assert pod is not None
    (status,) = pod["status"]["resourceClaimStatuses"]
    claim = rest.get(CLAIMS, status["resourceClaimName"], "default")
    assert claim is not None
    (result,) = claim["status"]["allocation"]["devices"]["results"]
    return {**result, "uid": claim["metadata"]["uid"]}


def _instances(settings: HardwareSettings) -> list[tuple[int, str, int]]:
    """(GPU minor, profile, start) of every GPU instance on the node."""
    with Nvml.open(settings) as nvml:
        return sorted(
            (nvml.gpu(i).minor_number, gi.profile_name, gi.placement.start)
            for i in range(nvml.device_count())
            for gi in nvml.gpu_instances(i)
        )


def test_a_3g_claim_gets_its_mig_device_created_held_and_removed(
    sandbox: Sandbox, drivers: dict[str, HardwareSettings]
) -> None:
    rest = sandbox.rest
    assert rest is not None
    _template(rest, "one-3g", "3g.40gb")
    _pod(rest, "job", "one-3g")
    assert wait_until(lambda: _phase(rest, "job") == "Running", 90), _phase(rest, "job")
    result = _result(rest, "job")
    node = result["pool"]
    assert result["driver"] == "gpu.nvidia.com"
    assert node in NODES
    assert (rest.get("pods", "job", "default") or {})["spec"]["nodeName"] == node
    # The solver's choice on an empty GPU: the upper half, so the lower one stays a 4g hole.
    assert result["device"].endswith("-mig-3g40gb-9-4")
    minor = int(result["device"].split("-")[1])
    settings = drivers[node]
    assert _instances(settings) == [(minor, "3g.40gb", 4)]
    other = next(n for n in NODES if n != node)
    assert _instances(drivers[other]) == []
    with Nvml.open(settings) as nvml:
        index = next(g.index for g in nvml.gpus() if g.minor_number == minor)
        (mig,) = nvml.mig_devices(index)
        assert mig.profile == "3g.40gb"
        held = list(nvml.processes(index))
    assert held  # the workload runs on the MIG device
    worker = next(iter(sandbox.nodes[node].runner.workers.values()))
    container = worker.main[0]
    cdi_id = f"k8s.gpu.nvidia.com/claim={result['uid']}-{result['device']}"
    assert container.spec.env["GPU_OPERATOR_CDI_DEVICES"] == cdi_id
    assert container.devices == (mig.uuid,)
    spec_file = sandbox.nodes[node].root / f"etc/cdi/k8s.gpu.nvidia.com-claim_{result['uid']}.yaml"
    assert "/dev/nvidia-caps/nvidia-cap" in spec_file.read_text()

    # The exporter's attribution: the kubelet's PodResources List (dynamic_resources) and one
    # sampling pass of the node's NVML put the pod on the MIG device's GPU instance.
    socket = sandbox.nodes[node].root / "var/lib/kubelet/pod-resources/kubelet.sock"
    entries = list_pod_devices(socket)
    assert ("job", "dra:gpu.nvidia.com", (result["device"],)) in [
        (e.pod, e.resource_name, e.device_ids) for e in entries
    ]
    with Nvml.open(settings) as nvml:
        sampled = Sampler(
            nvml, devices=DeviceSelection(), gpm_metrics=[], energy_interval_s=1.0
        ).sample()
    pods = pod_map(entries, sampled.mig_parents, (), sampled.dra_devices)
    assert pods[f"{index}-{mig.gpu_instance_id}"].pod == "job"
    assert f"{index}-{mig.gpu_instance_id}" in {r.entity.pod_key for r in sampled.readings}

    rest.delete("pods", "job", "default", grace_period_s=0)
    assert wait_until(lambda: not spec_file.exists(), 60)
    assert _instances(settings) == []


def test_nvidias_creation_order_case_is_served_by_the_scheduler_and_the_driver(
    sandbox: Sandbox, drivers: dict[str, HardwareSettings]
) -> None:
    """``nvidia-smi mig -cgi 19,19,14,9`` (1g, 1g, 2g, 3g) fails when the 1g's and the 2g land
    in both halves; as claims, one pod at a time on one node, all four are served and packed:
    1g at 0 and 1, 2g at 2, 3g at 4 — on one GPU (partitioned GPUs fill first)."""
    rest = sandbox.rest
    assert rest is not None
    node = NODES[0]
    pin = {"kubernetes.io/hostname": node}
    for profile in ("1g.10gb", "2g.20gb", "3g.40gb"):
        _template(rest, profile.split(".")[0], profile)

    def running(name: str) -> bool:
        return _phase(rest, name) == "Running"

    for i, template in enumerate(("1g", "1g", "2g", "3g")):
        _pod(rest, f"step-{i}", template, pin)
        assert wait_until(functools.partial(running, f"step-{i}"), 90), _phase(rest, f"step-{i}")
    devices = [_result(rest, f"step-{i}")["device"] for i in range(4)]
    minors = {d.split("-")[1] for d in devices}
    assert len(minors) == 1, devices
    (minor,) = minors
    assert devices == [
        f"gpu-{minor}-mig-1g10gb-19-0",
        f"gpu-{minor}-mig-1g10gb-19-1",
        f"gpu-{minor}-mig-2g20gb-14-2",
        f"gpu-{minor}-mig-3g40gb-9-4",
    ]
    assert _instances(drivers[node]) == [
        (int(minor), "1g.10gb", 0),
        (int(minor), "1g.10gb", 1),
        (int(minor), "2g.20gb", 2),
        (int(minor), "3g.40gb", 4),
    ]
