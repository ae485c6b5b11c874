"""Pod attribution of DRA-claimed GPUs for the exporter: PodResources ``List`` replies with
``dynamic_resources`` (as the protobuf runtime writes them) read into one entry per claimed
device (``dra:<driver>``), and those devices put on the exporter's entities — a whole GPU on its
UUID, a dynamic MIG device on its GPU instance; other drivers' devices are not counted."""

from __future__ import annotations

from gpu_operator.exporter.pods import dra_key, pod_map
from gpu_operator.podresources import ContainerDevices, parse_list_response
from gpu_operator.protos import podresources_v1_pb2 as pr


def _reply() -> bytes:
    def claimed(driver: str, device: str) -> pr.ClaimResource:
        return pr.ClaimResource(
            cdi_devices=[pr.CDIDevice(name=f"k8s.{driver}/claim=u-{device}")],
            driver_name=driver,
            pool_name="n1",
            device_name=device,
        )

    container = pr.ContainerResources(
        name="main",
        devices=[pr.ContainerDevices(resource_name="nvidia.com/gpu", device_ids=["GPU-b"])],
        dynamic_resources=[
            pr.DynamicResource(
                claim_name="c",
                claim_namespace="ml",
                claim_resources=[
                    claimed("gpu.nvidia.com", "gpu-3-mig-3g40gb-9-4"),
                    claimed("gpu.nvidia.com", "gpu-5"),
                    claimed("nic.example.com", "eth1"),
                ],
            )
        ],
    )
    pod = pr.PodResources(name="train", namespace="ml", containers=[container])
    data: bytes = pr.ListPodResourcesResponse(pod_resources=[pod]).SerializeToString()
    return data


def test_dynamic_resources_are_read_one_entry_per_claimed_device() -> None:
    assert parse_list_response(_reply()) == [
        ContainerDevices("train", "ml", "main", "nvidia.com/gpu", ("GPU-b",)),
        ContainerDevices("train", "ml", "main", "dra:gpu.nvidia.com", ("gpu-3-mig-3g40gb-9-4",)),
        ContainerDevices("train", "ml", "main", "dra:gpu.nvidia.com", ("gpu-5",)),
        ContainerDevices("train", "ml", "main", "dra:nic.example.com", ("eth1",)),
    ]


def test_claimed_gpus_and_mig_devices_are_put_on_their_entities() -> None:
    assert dra_key("gpu-3-mig-1g10gb-me-20-6") == "gpu-3-mig-20-6"
    assert dra_key("gpu-5") == "gpu-5"
    dra_devices = {"gpu-3-mig-9-4": "2-1", "gpu-5": "GPU-e", "gpu-3": "GPU-c"}
    pods = pod_map(parse_list_response(_reply()), {}, (), dra_devices)
    assert {k: (p.pod, p.container) for k, p in pods.items()} == {
        "GPU-b": ("train", "main"),
        "2-1": ("train", "main"),
        "GPU-e": ("train", "main"),
    }
    # A MIG device the node no longer has (deleted since) is attributed to nothing.
    assert "2-1" not in pod_map(parse_list_response(_reply()), {}, (), {"gpu-5": "GPU-e"})
