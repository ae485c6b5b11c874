"""The whole chain of pod attribution: the device plugin advertises MIG devices, the kubelet
stand-in admits pods, and the exporter reads PodResources over real gRPC and labels the right
GPU-instance series with the pod."""

from __future__ import annotations

from collections.abc import Callable

from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
from gpu_operator.exporter.serving import Exporter
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.podresources import list_pod_devices, pod_resources_source
from gpu_operator.sandbox.kubelet import Kubelet


def test_pods_on_mig_devices_and_whole_gpus_label_the_exporters_series(
    kubelet: Kubelet,
    start_plugin: Callable[..., object],
    mig_layout: Callable[[str, str], None],
    hardware: Callable[[str], HardwareSettings],
) -> None:
    mig_layout("dgx-a100", "half-balanced")  # GPUs 0-1 all-balanced, 2-7 whole
    start_plugin("dgx-a100", env={"MIG_STRATEGY": "mixed"})
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/mig-3g.20gb") == 2)
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 6)
    trainer = kubelet.admit_pod(
        "trainer", [("main", {"nvidia.com/mig-3g.20gb": 1})], namespace="ml"
    )
    web = kubelet.admit_pod("web", [("srv", {"nvidia.com/gpu": 1})], namespace="apps")
    [mig_uuid] = trainer.containers[0].devices["nvidia.com/mig-3g.20gb"]
    [gpu_uuid] = web.containers[0].devices["nvidia.com/gpu"]
    socket = kubelet.pod_resources_socket
    assert socket is not None
    assert {(d.pod, d.resource_name) for d in list_pod_devices(socket)} == {
        ("trainer", "nvidia.com/mig-3g.20gb"),
        ("web", "nvidia.com/gpu"),
    }

    with Nvml.open(hardware("dgx-a100")) as nvml:
        exporter = Exporter(
            nvml,
            ExporterSettings(hostname="node", kubernetes=True),
            read_collectors(DEFAULT_COLLECTORS),
            pod_source=pod_resources_source(socket),
        )
        exporter.step()
        exporter.refresh_pods()
        mig = next(m for g in (0, 1) for m in nvml.mig_devices(g) if m.uuid == mig_uuid)
        gpu_index = next(g.index for g in nvml.gpus() if g.uuid == gpu_uuid)
    lines = [
        line
        for line in exporter.body.decode().splitlines()
        if line.startswith("DCGM_FI_DEV_GPU_TEMP{")
    ]
    labelled = [line for line in lines if 'pod="' in line]
    assert len(labelled) == 2
    assert any(
        f'gpu="{mig.parent_index}"' in line
        and f'GPU_I_ID="{mig.gpu_instance_id}"' in line
        and 'namespace="ml",pod="trainer"' in line
        for line in labelled
    )
    assert any(
        f'gpu="{gpu_index}",' in line and 'namespace="apps",pod="web"' in line for line in labelled
    )
