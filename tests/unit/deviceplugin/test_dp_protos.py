"""The kubelet API protos: field names and numbers as the kubelet's, method paths as the
kubelet calls them, and the checked-in stubs exactly what ``make protos`` generates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from grpc_tools import protoc

from gpu_operator.protos import deviceplugin_v1beta1_pb2 as dp
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos import pluginregistration_v1_pb2 as reg
from gpu_operator.protos import podresources_v1_pb2 as pr

pytestmark = pytest.mark.timeout(30)

SRC = Path(dp.__file__).parents[2]
PROTOS = [
    "gpu_operator/protos/deviceplugin_v1beta1.proto",
    "gpu_operator/protos/podresources_v1.proto",
    "gpu_operator/protos/pluginregistration_v1.proto",
    "gpu_operator/protos/dra_v1.proto",
]


def test_regenerating_the_stubs_gives_the_checked_in_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for proto in PROTOS:
        (tmp_path / proto).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SRC / proto, tmp_path / proto)
    args = ["protoc", "-I", ".", "--python_out=.", "--grpc_python_out=.", "--pyi_out=."]
    monkeypatch.chdir(tmp_path)
    assert protoc.main([*args, *PROTOS]) == 0
    generated = sorted(
        p for p in (tmp_path / "gpu_operator/protos").iterdir() if p.suffix != ".proto"
    )
    assert [p.name for p in generated] == [
        "deviceplugin_v1beta1_pb2.py",
        "deviceplugin_v1beta1_pb2.pyi",
        "deviceplugin_v1beta1_pb2_grpc.py",
        "dra_v1_pb2.py",
        "dra_v1_pb2.pyi",
        "dra_v1_pb2_grpc.py",
        "pluginregistration_v1_pb2.py",
        "pluginregistration_v1_pb2.pyi",
        "pluginregistration_v1_pb2_grpc.py",
        "podresources_v1_pb2.py",
        "podresources_v1_pb2.pyi",
        "podresources_v1_pb2_grpc.py",
    ]
    for path in generated:
        checked_in = SRC / "gpu_operator/protos" / path.name
        assert checked_in.read_text() == path.read_text(), f"{path.name}: run `make protos`"


def fields(message: type) -> list[tuple[str, int]]:
    return [(f.name, f.number) for f in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            dp.DevicePluginOptions,
            [("pre_start_required", 1), ("get_preferred_allocation_available", 2)],
        ),
        (
            dp.RegisterRequest,
            [("version", 1), ("endpoint", 2), ("resource_name", 3), ("options", 4)],
        ),
        (dp.Device, [("ID", 1), ("health", 2), ("topology", 3)]),
        (dp.NUMANode, [("ID", 1)]),
        (
            dp.ContainerPreferredAllocationRequest,
            [("available_deviceIDs", 1), ("must_include_deviceIDs", 2), ("allocation_size", 3)],
        ),
        (dp.ContainerPreferredAllocationResponse, [("deviceIDs", 1)]),
        (dp.ContainerAllocateRequest, [("devices_ids", 1)]),
        (
            dp.ContainerAllocateResponse,
            [("envs", 1), ("mounts", 2), ("devices", 3), ("annotations", 4), ("cdi_devices", 5)],
        ),
        (dp.Mount, [("container_path", 1), ("host_path", 2), ("read_only", 3)]),
        (dp.DeviceSpec, [("container_path", 1), ("host_path", 2), ("permissions", 3)]),
        (dp.PreStartContainerRequest, [("devices_ids", 1)]),
        (
            pr.ContainerResources,
            [("name", 1), ("devices", 2), ("cpu_ids", 3), ("memory", 4), ("dynamic_resources", 5)],
        ),
        (pr.ContainerDevices, [("resource_name", 1), ("device_ids", 2), ("topology", 3)]),
        (pr.AllocatableResourcesResponse, [("devices", 1), ("cpu_ids", 2), ("memory", 3)]),
        (pr.DynamicResource, [("claim_name", 2), ("claim_namespace", 3), ("claim_resources", 4)]),
        (
            pr.ClaimResource,
            [("cdi_devices", 1), ("driver_name", 2), ("pool_name", 3), ("device_name", 4)],
        ),
        (pr.GetPodResourcesRequest, [("pod_name", 1), ("pod_namespace", 2)]),
        (
            reg.PluginInfo,
            [("type", 1), ("name", 2), ("endpoint", 3), ("supported_versions", 4)],
        ),
        (reg.RegistrationStatus, [("plugin_registered", 1), ("error", 2)]),
        (dra.NodePrepareResourcesRequest, [("claims", 1)]),
        (dra.NodePrepareResourcesResponse, [("claims", 1)]),
        (dra.NodePrepareResourceResponse, [("devices", 1), ("error", 2)]),
        (
            dra.Device,
            [("request_names", 1), ("pool_name", 2), ("device_name", 3), ("cdi_device_ids", 4)],
        ),
        (dra.NodeUnprepareResourcesRequest, [("claims", 1)]),
        (dra.NodeUnprepareResourcesResponse, [("claims", 1)]),
        (dra.NodeUnprepareResourceResponse, [("error", 1)]),
        (dra.Claim, [("namespace", 1), ("uid", 2), ("name", 3)]),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_messages_have_the_kubelets_field_names_and_numbers(
    message: type, expected: list[tuple[str, int]]
) -> None:
    assert fields(message) == expected


def test_services_have_the_kubelets_method_paths() -> None:
    services = {
        s.full_name: [m.name for m in s.methods]
        for s in [
            *dp.DESCRIPTOR.services_by_name.values(),
            *pr.DESCRIPTOR.services_by_name.values(),
            *reg.DESCRIPTOR.services_by_name.values(),
            *dra.DESCRIPTOR.services_by_name.values(),
        ]
    }
    assert services == {
        "v1beta1.Registration": ["Register"],
        "v1beta1.DevicePlugin": [
            "GetDevicePluginOptions",
            "ListAndWatch",
            "GetPreferredAllocation",
            "Allocate",
            "PreStartContainer",
        ],
        "v1.PodResourcesLister": ["List", "GetAllocatableResources", "Get"],
        "pluginregistration.Registration": ["GetInfo", "NotifyRegistrationStatus"],
        "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin": [
            "NodePrepareResources",
            "NodeUnprepareResources",
        ],
    }
