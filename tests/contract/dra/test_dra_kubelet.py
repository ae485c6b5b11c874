"""The DRA driver and the sandbox's kubelet stand-in, both for real over their sockets: the
plugin watcher finds the registration socket, checks ``GetInfo`` as the kubelet does and tells
the driver; a pod's claims are prepared before its containers would start and unprepared after
it is gone; each container gets the CDI ids of the claims (and requests) it names, which
resolve, as a CDI runtime resolves them, to the claim's GPU device nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.protos import pluginregistration_v1_pb2 as reg
from gpu_operator.protos import podresources_v1_pb2 as pr
from gpu_operator.protos.grpc_api import (
    PluginRegistrationServicerBase,
    PodResourcesListerStub,
    add_plugin_registration_servicer,
)
from gpu_operator.sandbox.kubelet import AdmissionError, Kubelet
from gpu_operator.sandbox.kubelet.cdi import CdiError, resolve
from helpers.dra_driver import Claims, claim
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(60)
NODE = "gpu-node-1"
POD_UID = "pod-uid-1"
CLAIM_UID = "claim-uid-1"


@pytest.fixture
def kubelet(sockets_dir: Path) -> Iterator[Kubelet]:
    stand_in = Kubelet(
        sockets_dir / "device-plugins",
        sockets_dir / "pod-resources",
        sockets_dir / "plugins_registry",
        dial_timeout_s=5,
    )
    stand_in.start()
    yield stand_in
    stand_in.stop()


def pod_resources(kubelet: Kubelet) -> dict[tuple[str, str], Any]:
    """The kubelet's PodResources ``List``, over its socket as dcgm-exporter reads it."""
    with grpc.insecure_channel(f"unix://{kubelet.pod_resources_socket}") as channel:
        response = PodResourcesListerStub(channel).List(pr.ListPodResourcesRequest(), timeout=5)
    return {(p.namespace, p.name): p for p in response.pod_resources}


def registered(kubelet: Kubelet) -> bool:
    assert kubelet.dra is not None
    return "gpu.nvidia.com" in kubelet.dra.plugins


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "train", "namespace": "ml", "uid": POD_UID},
        "spec": {
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "two-gpus"}],
            "containers": list(containers),
        },
        "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "train-gpu"}]},
    }


def test_the_plugin_watcher_registers_the_driver_and_tells_it(
    kubelet: Kubelet, start_driver: Callable[..., DraDriver], sockets_dir: Path
) -> None:
    driver = start_driver("hgx-h100")
    assert wait_until(lambda: registered(kubelet))
    assert kubelet.dra is not None
    plugin = kubelet.dra.plugins["gpu.nvidia.com"]
    assert plugin.endpoint == str(sockets_dir / "plugins/gpu.nvidia.com/dra.sock")
    assert plugin.service == "v1.DRAPlugin"
    assert driver.server is not None
    assert driver.server.registration.registered.wait(10)
    driver.stop()
    assert wait_until(lambda: not registered(kubelet))


def test_a_pods_claims_are_prepared_before_it_starts_and_unprepared_after(
    kubelet: Kubelet,
    start_driver: Callable[..., DraDriver],
    claims: Claims,
    tmp_path: Path,
) -> None:
    start_driver("hgx-h100")
    assert wait_until(lambda: registered(kubelet))
    resource_claim = claim(
        [("gpus", "gpu.nvidia.com", NODE, "gpu-1"), ("gpus", "gpu.nvidia.com", NODE, "gpu-4")],
        name="train-gpu",
        uid=CLAIM_UID,
        reserved_for=[POD_UID],
    )
    claims.add(resource_claim)
    spec = pod(
        {"name": "main", "resources": {"claims": [{"name": "gpu"}]}},
        {"name": "sidecar", "resources": {"claims": [{"name": "gpu", "request": "other"}]}},
        {"name": "plain"},
    )
    prepared = kubelet.prepare_claims(spec, {"gpu": resource_claim})
    ids = prepared.cdi_ids(spec["spec"]["containers"][0])
    assert ids == [
        f"k8s.gpu.nvidia.com/claim={CLAIM_UID}-gpu-1",
        f"k8s.gpu.nvidia.com/claim={CLAIM_UID}-gpu-4",
    ]
    assert prepared.cdi_ids(spec["spec"]["containers"][1]) == []  # a request it doesn't have
    assert prepared.cdi_ids(spec["spec"]["containers"][2]) == []
    edits = resolve(ids, [tmp_path / "cdi"])
    assert edits.device_nodes[-2:] == ["/dev/nvidia1", "/dev/nvidia4"]
    assert "/dev/nvidiactl" in edits.device_nodes
    assert edits.env["NVIDIA_VISIBLE_DEVICES"] == "void"

    listed = pod_resources(kubelet)
    assert list(listed) == [("ml", "train")]
    by_container = {c.name: list(c.dynamic_resources) for c in listed[("ml", "train")].containers}
    assert set(by_container) == {"main", "sidecar"}
    (main,) = by_container["main"]
    assert (main.claim_name, main.claim_namespace) == ("train-gpu", "ml")
    assert [
        (r.driver_name, r.pool_name, r.device_name, [d.name for d in r.cdi_devices])
        for r in main.claim_resources
    ] == [
        ("gpu.nvidia.com", NODE, "gpu-1", [ids[0]]),
        ("gpu.nvidia.com", NODE, "gpu-4", [ids[1]]),
    ]
    assert [list(d.claim_resources) for d in by_container["sidecar"]] == [[]]

    assert kubelet.unprepare_claims(POD_UID) == []
    assert pod_resources(kubelet) == {}
    assert list((tmp_path / "cdi").iterdir()) == []
    with pytest.raises(CdiError, match=r"unresolvable CDI devices k8s\.gpu\.nvidia\.com/claim="):
        resolve(ids, [tmp_path / "cdi"])


def test_a_claim_not_reserved_for_the_pod_or_failing_to_prepare_fails_admission(
    kubelet: Kubelet, start_driver: Callable[..., DraDriver], claims: Claims, tmp_path: Path
) -> None:
    start_driver("hgx-h100")
    assert wait_until(lambda: registered(kubelet))
    spec = pod({"name": "main", "resources": {"claims": [{"name": "gpu"}]}})
    unreserved = claim([("gpus", "gpu.nvidia.com", NODE, "gpu-1")], name="train-gpu", uid=CLAIM_UID)
    with pytest.raises(AdmissionError, match="not allowed to use ResourceClaim train-gpu"):
        kubelet.prepare_claims(spec, {"gpu": unreserved})
    elsewhere = claim(
        [("gpus", "gpu.nvidia.com", "gpu-node-2", "gpu-1")],
        name="train-gpu",
        uid=CLAIM_UID,
        reserved_for=[POD_UID],
    )
    claims.add(elsewhere)
    with pytest.raises(
        AdmissionError,
        match="NodePrepareResources failed for ResourceClaim train-gpu: ResourceClaim "
        "ml/train-gpu: device gpu-node-2/gpu-1 is not on this node",
    ):
        kubelet.prepare_claims(spec, {"gpu": elsewhere})
    assert not (tmp_path / "cdi").exists() or list((tmp_path / "cdi").iterdir()) == []


class OldPlugin(PluginRegistrationServicerBase):
    """A plugin that only speaks v1beta1 (which this stand-in doesn't)."""

    def __init__(self) -> None:
        self.status: Any = None

    def GetInfo(self, request: Any, context: Any) -> reg.PluginInfo:
        return reg.PluginInfo(
            type="DRAPlugin",
            name="old.example.com",
            endpoint="/nonexistent",
            supported_versions=["v1beta1.DRAPlugin"],
        )

    def NotifyRegistrationStatus(self, request: Any, context: Any) -> Any:
        self.status = request
        return reg.RegistrationStatusResponse()


def test_a_plugin_without_the_v1_service_is_refused_with_the_kubelets_reason(
    kubelet: Kubelet, sockets_dir: Path
) -> None:
    plugin = OldPlugin()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    add_plugin_registration_servicer(plugin, server)
    server.add_insecure_port(f"unix://{sockets_dir / 'plugins_registry/old.example.com-reg.sock'}")
    server.start()
    try:
        assert kubelet.dra is not None
        assert wait_until(lambda: plugin.status is not None)
        assert not plugin.status.plugin_registered
        assert plugin.status.error == (
            "RegisterPlugin error -- plugin validation failed with err: invalid supported gRPC "
            "versions of DRA driver plugin old.example.com at endpoint /nonexistent: none of "
            'services supported by the plugin (["v1beta1.DRAPlugin"]) are supported by the '
            'kubelet (["v1.DRAPlugin"])'
        )
        assert kubelet.dra.plugins == {}
    finally:
        server.stop(grace=None)


def test_a_restarted_kubelet_registers_the_running_driver_again(
    kubelet: Kubelet, start_driver: Callable[..., DraDriver]
) -> None:
    start_driver("hgx-h100")
    assert wait_until(lambda: registered(kubelet))
    kubelet.restart()
    assert wait_until(lambda: registered(kubelet))
    assert kubelet.dra is not None
    assert len([r for r in kubelet.dra.registrations if r[0].name == "gpu.nvidia.com"]) == 2
