"""``preflight --from-cluster``'s cluster checks: versions, OSes, runtimes and CDI, MIG, and a
device plugin that would conflict."""

from __future__ import annotations

from typing import Any

from gpu_operator.commands.preflight_cluster import cluster_checks

Obj = dict[str, Any]


def node(
    name: str, kubelet: str = "v1.30.4", runtime: str = "containerd://1.7.22", **labels: str
) -> Obj:
    base = {
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "rocky",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "8.5",
    }
    return {
        "metadata": {"name": name, "labels": {**base, **labels}},
        "status": {
            "nodeInfo": {
                "kubeletVersion": kubelet,
                "containerRuntimeVersion": runtime,
                "osImage": "Rocky Linux 8.5",
            }
        },
    }


def lines(nodes: list[Obj], pods: list[Obj] | None = None) -> list[str]:
    return [c.line() for c in cluster_checks(nodes, pods or [])]


def test_a_ready_cluster_reports_versions_os_runtime_cdi_and_mig_layout() -> None:
    mig = {
        "nvidia.com/mig.capable": "true",
        "nvidia.com/mig.config": "all-balanced",
        "nvidia.com/mig.config.state": "success",
    }
    assert lines([node("gpu-1", **mig)]) == [
        "ok    kubelet v1.30.4",
        "ok    NFD labels on 1/1 nodes",
        "ok    gpu-1: rocky 8.5; containerd://1.7.22: CDI supported;"
        " MIG capable, config all-balanced (success)",
    ]


def test_an_old_kubelet_fails_and_an_old_runtime_has_no_cdi() -> None:
    out = lines([node("gpu-1", kubelet="v1.23.9", runtime="containerd://1.6.20")])
    assert out[0] == "fail  kubelet v1.23.9 is older than 1.25 (PodResources v1)"
    assert "containerd://1.6.20: no CDI (device list via env)" in out[2]


def test_a_device_plugin_not_ours_is_a_conflict_and_ours_is_not() -> None:
    theirs = {
        "metadata": {"name": "nvidia-device-plugin-abc", "namespace": "kube-system", "labels": {}},
        "spec": {"containers": [{"image": "nvcr.io/nvidia/k8s-device-plugin:v0.14.1"}]},
    }
    ours = {
        "metadata": {
            "name": "nvidia-device-plugin-daemonset-x",
            "namespace": "gpu-operator",
            "labels": {"app.kubernetes.io/part-of": "gpu-operator"},
        },
        "spec": {"containers": [{"image": "ghcr.io/gpu-operator/gpu-operator:v0.1.0"}]},
    }
    out = lines([node("gpu-1")], [theirs, ours])
    assert [line for line in out if line.startswith("fail")] == [
        "fail  a device plugin already runs: kube-system/nvidia-device-plugin-abc"
        " (nvcr.io/nvidia/k8s-device-plugin:v0.14.1);"
        " remove it or deploy with devicePlugin.enabled=false"
    ]


def test_without_nfd_labels_it_says_how_to_get_them() -> None:
    bare = {"metadata": {"name": "n", "labels": {}}, "status": {}}
    out = lines([bare])
    assert out[0] == "warn  kubelet versions unknown (nodes report no nodeInfo)"
    assert out[1].startswith("warn  no NFD labels on any node: install with nfd.enabled=true")
    assert out[2].startswith("warn  no GPU node found yet")
