"""The DRA driver's API shell against the API server emulator (``resource.k8s.io/v1`` served
with its schema, strict field validation): the slice it builds is accepted as it is, a second
publish of the same content writes nothing, a taint replaces the slice with the pool's
generation bumped, a clean exit deletes only this node's slices of our driver, and a claim is
read back as the prepare core expects it; then the whole driver publishes through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from gpu_operator.dra.claims import ClaimError, ClaimRef, our_results
from gpu_operator.dra.devices import gpu_device
from gpu_operator.dra.kubeapi import ClaimReader, SlicePublisher
from gpu_operator.dra.plugin import DraDriver, read_node
from gpu_operator.dra.settings import resolve_settings
from gpu_operator.dra.slices import Taint, build_slice
from gpu_operator.gpu import HardwareSettings
from gpu_operator.kube import create_from_manifest
from gpu_operator.kube.cluster_objects import get_cluster_object, list_cluster_objects
from helpers.dra_driver import make_driver_root
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(60)
NODE = "gpu-node-1"
V1 = "resource.k8s.io/v1"
ResourceClaim = create_namespaced_resource(
    "resource.k8s.io", "v1", "ResourceClaim", "resourceclaims"
)
ResourceSlice = create_global_resource("resource.k8s.io", "v1", "ResourceSlice", "resourceslices")


def stored(client: Client, name: str) -> dict[str, Any] | None:
    return get_cluster_object(client, V1, "ResourceSlice", "resourceslices", name)


def test_publish_creates_leaves_alone_replaces_and_deletes_this_nodes_slice(
    client: Client, hardware: Callable[[str], HardwareSettings]
) -> None:
    node = read_node(hardware("hgx-h100"))
    devices = [gpu_device(g, node.system) for g in node.gpus]
    publisher = SlicePublisher(client)
    assert publisher.publish(build_slice(NODE, devices, {}, 1))
    first = stored(client, f"{NODE}-gpu.nvidia.com")
    assert first is not None
    assert first["spec"]["pool"] == {"name": NODE, "generation": 1, "resourceSliceCount": 1}
    assert first["spec"]["devices"] == devices

    assert not publisher.publish(build_slice(NODE, devices, {}, 1))  # steady: no write
    assert publisher.writes == 1

    tainted = build_slice(NODE, devices, {"gpu-3": [Taint("gpu.nvidia.com/xid", "48")]}, 1)
    assert publisher.publish(tainted)
    second = stored(client, f"{NODE}-gpu.nvidia.com")
    assert second is not None
    assert second["spec"]["pool"]["generation"] == 2
    taints = {d["name"]: d.get("taints") for d in second["spec"]["devices"] if d.get("taints")}
    assert list(taints) == ["gpu-3"]
    assert (taints["gpu-3"][0]["key"], taints["gpu-3"][0]["value"]) == ("gpu.nvidia.com/xid", "48")
    assert not publisher.publish(tainted)  # the server's timeAdded is no difference

    assert publisher.publish(build_slice("gpu-node-2", devices, {}, 1))
    assert publisher.delete_node_slices(NODE) == 1
    left = list_cluster_objects(client, V1, "ResourceSlice", "resourceslices")
    assert [s["metadata"]["name"] for s in left] == ["gpu-node-2-gpu.nvidia.com"]


def test_a_claim_is_read_back_as_prepare_expects_it(client: Client) -> None:
    create_from_manifest(
        client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}
    )
    created = client.create(
        ResourceClaim.from_dict(
            {
                "apiVersion": V1,
                "kind": "ResourceClaim",
                "metadata": {"name": "train", "namespace": "ml"},
                "spec": {
                    "devices": {
                        "requests": [
                            {"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com"}}
                        ]
                    }
                },
            }
        )
    )
    uid = created.metadata.uid
    read = ClaimReader(client)
    body = read("ml", "train")
    assert body is not None
    assert body["metadata"]["uid"] == uid
    assert read("ml", "absent") is None
    with pytest.raises(ClaimError, match=r"^ResourceClaim ml/train: not allocated$"):
        our_results(ClaimRef("ml", "train", uid), body, NODE, {"gpu-0"})


def test_the_driver_publishes_through_the_api_and_deletes_on_a_clean_stop(
    client: Client,
    hardware: Callable[[str], HardwareSettings],
    sockets_dir: Path,
    tmp_path: Path,
) -> None:
    settings = resolve_settings(
        {},
        {
            "NODE_NAME": NODE,
            "CDI_ROOT": str(tmp_path / "cdi"),
            "DRIVER_ROOT_CTR_PATH": str(make_driver_root(tmp_path / "driver", "580.159.04")),
            "KUBELET_REGISTRAR_DIRECTORY_PATH": str(sockets_dir / "plugins_registry"),
            "KUBELET_PLUGINS_DIRECTORY_PATH": str(sockets_dir / "plugins"),
        },
    )
    driver = DraDriver(
        settings,
        hardware("dgx-a100"),
        publisher=SlicePublisher(client),
        claims=ClaimReader(client),
        resync_s=0.2,
    )
    driver.start()
    try:
        assert driver.published.wait(10)
        body = stored(client, f"{NODE}-gpu.nvidia.com")
        assert body is not None
        assert len(body["spec"]["devices"]) == 8
        # Deleted behind its back: the next resync publishes it again.
        client.delete(ResourceSlice, f"{NODE}-gpu.nvidia.com")
        assert wait_until(lambda: stored(client, f"{NODE}-gpu.nvidia.com") is not None)
    finally:
        driver.stop(clean=True)
    assert stored(client, f"{NODE}-gpu.nvidia.com") is None
