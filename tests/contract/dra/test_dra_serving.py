"""The DRA driver as the kubelet sees it, over grpcio on its unix sockets: the plugin watcher's
``GetInfo`` on the registration socket, ``NodePrepareResources``/``NodeUnprepareResources`` on
the DRA socket (path ``/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/…``), a restart that keeps
prepared claims, the ResourceSlice it publishes, XIDs from the simulator becoming device taints,
and a clean stop that removes its sockets and slices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import yaml

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos import pluginregistration_v1_pb2 as reg
from gpu_operator.protos.grpc_api import DRAPluginStub, PluginRegistrationStub
from helpers.dra_driver import Claims, Slices, claim

pytestmark = pytest.mark.timeout(60)
NODE = "gpu-node-1"
StartDriver = Callable[..., DraDriver]
UID = "8e3c-4f00-aa11"


def test_get_info_names_a_dra_plugin_its_driver_socket_and_the_v1_service(
    start_driver: StartDriver, sockets_dir: Path
) -> None:
    start_driver("hgx-h100")
    socket = sockets_dir / "plugins_registry/gpu.nvidia.com-reg.sock"
    assert socket.is_socket()
    with grpc.insecure_channel(f"unix://{socket}") as channel:
        info = PluginRegistrationStub(channel).GetInfo(reg.InfoRequest(), timeout=5)
    assert info.type == "DRAPlugin"
    assert info.name == "gpu.nvidia.com"
    assert info.endpoint == str(sockets_dir / "plugins/gpu.nvidia.com/dra.sock")
    assert list(info.supported_versions) == ["v1.DRAPlugin"]
    assert Path(info.endpoint).is_socket()


def _prepare(endpoint: Path, *claims: dra.Claim) -> dra.NodePrepareResourcesResponse:
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        response: dra.NodePrepareResourcesResponse = DRAPluginStub(channel).NodePrepareResources(
            dra.NodePrepareResourcesRequest(claims=list(claims)), timeout=5
        )
    return response


def _unprepare(endpoint: Path, *claims: dra.Claim) -> dra.NodeUnprepareResourcesResponse:
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        response: dra.NodeUnprepareResourcesResponse = DRAPluginStub(
            channel
        ).NodeUnprepareResources(dra.NodeUnprepareResourcesRequest(claims=list(claims)), timeout=5)
    return response


def test_prepare_and_unprepare_over_the_socket_as_the_kubelet_calls_them(
    start_driver: StartDriver, sockets_dir: Path, claims: Claims, tmp_path: Path
) -> None:
    start_driver("hgx-h100")
    endpoint = sockets_dir / "plugins/gpu.nvidia.com/dra.sock"
    claims.add(
        claim(
            [("gpus", "gpu.nvidia.com", NODE, "gpu-1"), ("gpus", "gpu.nvidia.com", NODE, "gpu-6")]
        )
    )
    good = dra.Claim(namespace="ml", name="train", uid=UID)
    missing = dra.Claim(namespace="ml", name="gone", uid="0000-1111")
    response = _prepare(endpoint, good, missing)
    assert set(response.claims) == {UID, "0000-1111"}
    assert response.claims["0000-1111"].error == "ResourceClaim ml/gone: not found"
    assert list(response.claims["0000-1111"].devices) == []
    answer = response.claims[UID]
    assert answer.error == ""
    assert [
        (list(d.request_names), d.pool_name, d.device_name, list(d.cdi_device_ids))
        for d in answer.devices
    ] == [
        (["gpus"], NODE, "gpu-1", [f"k8s.gpu.nvidia.com/claim={UID}-gpu-1"]),
        (["gpus"], NODE, "gpu-6", [f"k8s.gpu.nvidia.com/claim={UID}-gpu-6"]),
    ]
    spec_file = tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{UID}.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    assert [d["name"] for d in spec["devices"]] == [f"{UID}-gpu-1", f"{UID}-gpu-6"]
    assert _prepare(endpoint, good).claims[UID] == answer  # idempotent

    unprepared = _unprepare(endpoint, good, missing)
    assert {uid: r.error for uid, r in unprepared.claims.items()} == {UID: "", "0000-1111": ""}
    assert not spec_file.exists()


def test_a_restarted_driver_answers_a_prepared_claim_the_same(
    start_driver: StartDriver, sockets_dir: Path, claims: Claims
) -> None:
    first = start_driver("hgx-h100")
    endpoint = sockets_dir / "plugins/gpu.nvidia.com/dra.sock"
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-0")]))
    ref = dra.Claim(namespace="ml", name="train", uid=UID)
    before = _prepare(endpoint, ref).claims[UID]
    first.stop(clean=False)
    assert not endpoint.exists()
    claims.objects.clear()  # the API is unreachable or the claim gone: the checkpoint answers
    start_driver("hgx-h100")
    assert _prepare(endpoint, ref).claims[UID] == before


def test_the_node_is_published_as_one_slice_and_removed_on_a_clean_stop(
    start_driver: StartDriver, slices: Slices, sockets_dir: Path
) -> None:
    driver = start_driver("dgx-a100")
    assert list(slices.stored) == [f"{NODE}-gpu.nvidia.com"]
    spec = slices.stored[f"{NODE}-gpu.nvidia.com"]["spec"]
    assert (spec["driver"], spec["nodeName"], spec["pool"]["name"]) == (
        "gpu.nvidia.com",
        NODE,
        NODE,
    )
    assert [d["name"] for d in spec["devices"]] == [f"gpu-{i}" for i in range(8)]
    assert spec["devices"][0]["attributes"]["productName"] == {"string": "NVIDIA A100-SXM4-40GB"}
    assert len(slices.writes) == 1
    driver.stop(clean=True)
    assert slices.stored == {}
    assert list((sockets_dir / "plugins_registry").iterdir()) == []
    assert not (sockets_dir / "plugins/gpu.nvidia.com/dra.sock").exists()


def _taints(slices: Slices) -> dict[str, list[dict[str, str]]]:
    devices = slices.stored[f"{NODE}-gpu.nvidia.com"]["spec"]["devices"]
    return {d["name"]: d["taints"] for d in devices if d.get("taints")}


def test_a_critical_xid_taints_its_gpu_and_an_application_xid_does_not(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    start_driver("dgx-a100")
    store = StateStore(hardware("dgx-a100").state_path())
    faults.inject_xid(store, 2, 13)  # an application error: ignored, as by the device plugin
    faults.inject_xid(store, 3, 48)
    assert slices.wait_for(lambda s: bool(_taints(s)))
    assert _taints(slices) == {
        "gpu-3": [{"key": "gpu.nvidia.com/xid", "value": "48", "effect": "NoSchedule"}]
    }


def test_a_lost_gpu_is_tainted_lost(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    start_driver("hgx-h100")
    faults.lose_gpu(StateStore(hardware("hgx-h100").state_path()), 5)
    assert slices.wait_for(
        lambda s: any(t["key"] == "gpu.nvidia.com/gpu-lost" for t in _taints(s).get("gpu-5", []))
    )
    assert list(_taints(slices)) == ["gpu-5"]


def test_a_mig_enabled_gpu_is_not_published_as_a_full_gpu(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    with Nvml.open(hardware("hgx-h100")) as nvml:
        mode, _ = nvml.set_mig_mode(0, True)
    assert mode.enabled
    start_driver("hgx-h100")
    names = [d["name"] for d in slices.stored[f"{NODE}-gpu.nvidia.com"]["spec"]["devices"]]
    assert names == [f"gpu-{i}" for i in range(1, 8)]
