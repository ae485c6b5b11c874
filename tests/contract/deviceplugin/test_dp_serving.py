"""What the kubelet sees: registration, resources per MIG strategy and sharing, Allocate and
GetPreferredAllocation through pod admission, PodResources — all over real gRPC."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
from gpu_operator.protos import podresources_v1_pb2 as pr
from gpu_operator.protos.grpc_api import DevicePluginStub, PodResourcesListerStub, RegistrationStub
from gpu_operator.sandbox.kubelet import AdmissionError, Kubelet

pytestmark = pytest.mark.timeout(30)

StartPlugin = Callable[..., DevicePlugin]


def resources(kubelet: Kubelet) -> dict[str, tuple[int, int]]:
    return {r: (kubelet.capacity(r), kubelet.allocatable(r)) for r in kubelet.resource_names()}


def test_the_plugin_registers_each_resource_with_upstreams_fields(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    start_plugin("dgx-a100")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 8)
    [request] = kubelet.manager.registrations
    assert request.version == "v1beta1"
    assert request.endpoint == "nvidia-gpu.sock"
    assert request.resource_name == "nvidia.com/gpu"
    assert request.options.get_preferred_allocation_available is True
    assert request.options.pre_start_required is False
    assert (kubelet.plugin_dir / "nvidia-gpu.sock").is_socket()


def test_done_when_all_balanced_dgx_a100_with_mixed_strategy(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    mig_layout: Callable[[str, str], None],
    hardware: Callable[[str], HardwareSettings],
) -> None:
    mig_layout("dgx-a100", "all-balanced")
    start_plugin("dgx-a100", env={"MIG_STRATEGY": "mixed"})
    expected = {
        "nvidia.com/mig-1g.5gb": (16, 16),
        "nvidia.com/mig-2g.10gb": (8, 8),
        "nvidia.com/mig-3g.20gb": (8, 8),
    }
    assert kubelet.wait_until(lambda: resources(kubelet) == expected), resources(kubelet)
    endpoints = sorted(r.endpoint for r in kubelet.manager.registrations)
    assert endpoints == [
        "nvidia-mig-1g.5gb.sock",
        "nvidia-mig-2g.10gb.sock",
        "nvidia-mig-3g.20gb.sock",
    ]
    pod = kubelet.admit_pod("big", [("main", {"nvidia.com/mig-3g.20gb": 1})])
    [device_id] = pod.containers[0].devices["nvidia.com/mig-3g.20gb"]
    response = pod.containers[0].responses["nvidia.com/mig-3g.20gb"]
    assert device_id.startswith("MIG-")
    assert dict(response.envs) == {"NVIDIA_VISIBLE_DEVICES": device_id}
    with Nvml.open(hardware("dgx-a100")) as nvml:
        profiles = {m.uuid: m.profile for g in nvml.gpus() for m in nvml.mig_devices(g.index)}
    assert profiles[device_id] == "3g.20gb"


def test_done_when_time_slicing_four_replicas_gives_32_gpus(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    config = (
        "sharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n"
    )
    start_plugin("dgx-a100", config=config)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 32)
    ids = sorted(kubelet.state("nvidia.com/gpu").devices)
    assert all(i.startswith("GPU-") and i.rsplit("::", 1)[1] in "0123" for i in ids)
    assert len({i.split("::")[0] for i in ids}) == 8


@pytest.mark.parametrize(
    ("layout", "strategy", "expected"),
    [
        pytest.param(None, "none", {"nvidia.com/gpu": (8, 8)}, id="MIG off, none"),
        pytest.param("all-balanced", "none", {"nvidia.com/gpu": (8, 8)}, id="all-balanced, none"),
        pytest.param("all-1g.5gb", "single", {"nvidia.com/gpu": (56, 56)}, id="all-1g.5gb, single"),
        pytest.param(
            "half-balanced",
            "mixed",
            {
                "nvidia.com/gpu": (6, 6),
                "nvidia.com/mig-1g.5gb": (4, 4),
                "nvidia.com/mig-2g.10gb": (2, 2),
                "nvidia.com/mig-3g.20gb": (2, 2),
            },
            id="mixed node, mixed",
        ),
    ],
)
def test_each_strategy_on_dgx_a100(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    mig_layout: Callable[[str, str], None],
    layout: str | None,
    strategy: str,
    expected: dict[str, tuple[int, int]],
) -> None:
    if layout:
        mig_layout("dgx-a100", layout)
    start_plugin("dgx-a100", mig_strategy=strategy)
    assert kubelet.wait_until(lambda: resources(kubelet) == expected), resources(kubelet)


def test_single_strategy_on_a_mixed_layout_refuses_to_start(
    kubelet: Kubelet, start_plugin: StartPlugin, mig_layout: Callable[[str, str], None]
) -> None:
    mig_layout("dgx-a100", "all-balanced")
    with pytest.raises(ConfigError, match="more than one MIG device type present on node"):
        start_plugin("dgx-a100", mig_strategy="single")
    assert list(kubelet.plugin_dir.glob("nvidia-*.sock")) == []


@pytest.mark.parametrize(
    ("flags", "check"),
    [
        pytest.param(
            {"device_list_strategy": "volume-mounts"},
            lambda r, ids: (
                dict(r.envs) == {"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"}
                and [m.container_path for m in r.mounts]
                == [f"/var/run/nvidia-container-devices/{i}" for i in ids]
            ),
            id="volume-mounts",
        ),
        pytest.param(
            {"device_list_strategy": "cdi-annotations"},
            lambda r, ids: (
                not r.envs
                and list(r.annotations.values())
                == [",".join(f"k8s.device-plugin.nvidia.com/gpu={i}" for i in ids)]
                and next(iter(r.annotations)).startswith("cdi.k8s.io/nvidia-device-plugin_")
            ),
            id="cdi-annotations",
        ),
        pytest.param(
            {"device_list_strategy": "cdi-cri"},
            lambda r, ids: (
                [d.name for d in r.cdi_devices]
                == [f"k8s.device-plugin.nvidia.com/gpu={i}" for i in ids]
            ),
            id="cdi-cri",
        ),
    ],
)
def test_allocate_answers_per_device_list_strategy(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    flags: dict[str, str],
    check: Callable[[pb.ContainerAllocateResponse, list[str]], bool],
) -> None:
    start_plugin("a30x4", **flags)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4)
    pod = kubelet.admit_pod("p", [("c", {"nvidia.com/gpu": 2})])
    ids = pod.containers[0].devices["nvidia.com/gpu"]
    assert check(pod.containers[0].responses["nvidia.com/gpu"], ids)


def test_allocate_refuses_an_unknown_device_with_invalid_argument(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    start_plugin("t4")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 1)
    stub = kubelet.state("nvidia.com/gpu").stub
    request = pb.AllocateRequest(
        container_requests=[pb.ContainerAllocateRequest(devices_ids=["GPU-not-here"])]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Allocate(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown device: GPU-not-here" in caught.value.details()


def test_a_shared_request_over_one_fails_pod_admission(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    config = (
        "sharing:\n  timeSlicing:\n    renameByDefault: true\n"
        "    failRequestsGreaterThanOne: true\n"
        "    resources: [{name: gpu, replicas: 4}]\n"
    )
    start_plugin("t4", config=config)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu.shared") == 4)
    assert kubelet.manager.registrations[0].endpoint == "nvidia-gpu.shared.sock"
    kubelet.admit_pod("one", [("c", {"nvidia.com/gpu.shared": 1})])
    with pytest.raises(AdmissionError, match="maximum request size for shared resources is 1"):
        kubelet.admit_pod("two", [("c", {"nvidia.com/gpu.shared": 2})])


def test_preferred_allocation_on_hgx_h100_picks_nvlinked_gpus_behind_one_pcie_switch(
    kubelet: Kubelet, start_plugin: StartPlugin, hardware: Callable[[str], HardwareSettings]
) -> None:
    start_plugin("hgx-h100")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 8)
    with Nvml.open(hardware("hgx-h100")) as nvml:
        index = {g.uuid: g.index for g in nvml.gpus()}
        for n in range(4):
            pod = kubelet.admit_pod(f"pair-{n}", [("c", {"nvidia.com/gpu": 2})])
            a, b = (index[i] for i in pod.containers[0].devices["nvidia.com/gpu"])
            topology = nvml.topology(a, b)
            assert topology.nvlinks == 18
            assert topology.common_ancestor == "multiple", (a, b, topology)


def test_preferred_allocation_spreads_replicas_over_gpus(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    config = "sharing:\n  timeSlicing:\n    resources: [{name: gpu, replicas: 4}]\n"
    start_plugin("a30x4", config=config)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 16)
    pod = kubelet.admit_pod("spread", [("c", {"nvidia.com/gpu": 4})])
    ids = pod.containers[0].devices["nvidia.com/gpu"]
    assert len({i.split("::")[0] for i in ids}) == 4


def test_pod_resources_report_allocations_and_allocatable_devices(
    kubelet: Kubelet, start_plugin: StartPlugin, mig_layout: Callable[[str, str], None]
) -> None:
    mig_layout("dgx-a100", "half-balanced")
    start_plugin("dgx-a100", mig_strategy="mixed")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/mig-1g.5gb") == 4)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 6)
    pod = kubelet.admit_pod(
        "mixed",
        [("a", {"nvidia.com/gpu": 1}), ("b", {"nvidia.com/mig-1g.5gb": 2})],
        namespace="ml",
    )
    assert kubelet.pod_resources_socket is not None
    with grpc.insecure_channel(f"unix://{kubelet.pod_resources_socket}") as channel:
        lister = PodResourcesListerStub(channel)
        listed = lister.List(pr.ListPodResourcesRequest(), timeout=5)
        got = lister.Get(pr.GetPodResourcesRequest(pod_name="mixed", pod_namespace="ml"), timeout=5)
        allocatable = lister.GetAllocatableResources(pr.AllocatableResourcesRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as missing:
            lister.Get(pr.GetPodResourcesRequest(pod_name="nope", pod_namespace="ml"), timeout=5)
    [listed_pod] = listed.pod_resources
    assert listed_pod == got.pod_resources
    assert (listed_pod.name, listed_pod.namespace) == ("mixed", "ml")
    by_container = {
        c.name: {d.resource_name: list(d.device_ids) for d in c.devices}
        for c in listed_pod.containers
    }
    assert by_container == {
        "a": {"nvidia.com/gpu": pod.containers[0].devices["nvidia.com/gpu"]},
        "b": {"nvidia.com/mig-1g.5gb": pod.containers[1].devices["nvidia.com/mig-1g.5gb"]},
    }
    assert all(d.topology.nodes for c in listed_pod.containers for d in c.devices)
    assert len(allocatable.devices) == 6 + 4 + 2 + 2
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_stand_in_kubelet_refuses_bad_registrations(kubelet: Kubelet) -> None:
    with grpc.insecure_channel(f"unix://{kubelet.socket}") as channel:
        stub = RegistrationStub(channel)
        for request, message in [
            (
                pb.RegisterRequest(version="v1alpha", endpoint="x.sock", resource_name="a.com/b"),
                "not supported",
            ),
            (
                pb.RegisterRequest(version="v1beta1", endpoint="x.sock", resource_name="gpu"),
                "extended resource name",
            ),
            (
                pb.RegisterRequest(version="v1beta1", endpoint="x.sock", resource_name="a.com/b"),
                "failed to dial",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                stub.Register(request, timeout=15)
            assert message in caught.value.details()


def test_a_plugin_that_stops_leaves_capacity_but_no_allocatable(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    plugin = start_plugin("a30x4")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4)
    plugin.stop()
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 0)
    assert kubelet.capacity("nvidia.com/gpu") == 4
    assert not (kubelet.plugin_dir / "nvidia-gpu.sock").exists()
    # A direct call to the stopped plugin's socket fails: nothing is serving.
    socket = f"unix://{kubelet.plugin_dir}/nvidia-gpu.sock"
    with grpc.insecure_channel(socket) as channel, pytest.raises(grpc.RpcError):
        DevicePluginStub(channel).GetDevicePluginOptions(pb.Empty(), timeout=1)
