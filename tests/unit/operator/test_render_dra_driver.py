"""``draDriver.enabled`` renders the DRA kubelet plugin as NVIDIA's k8s-dra-driver-gpu chart
deploys it: the kubelet's plugin directories, the CDI root, the driver root, NODE_NAME from the
downward API, its service account, gated on ``toolkit-ready`` like the device plugin, on nodes
labelled ``nvidia.com/gpu.deploy.dra-driver=true`` (and ``draDriver.nodeSelector``); with it the
DeviceClasses ``gpu.nvidia.com`` and ``mig.nvidia.com``, cluster-scoped. Off by default."""

from __future__ import annotations

from typing import Any

from gpu_operator.dra.classes import device_classes
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import Desired, desired_state
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.render.common import PART_OF

GPU_NODE = NodeFacts(
    name="gpu-1", labels={"feature.node.kubernetes.io/pci-10de.present": "true"}, annotations={}
)
DS = "nvidia-dra-driver-gpu-kubelet-plugin"
DRA_LABEL = "nvidia.com/gpu.deploy.dra-driver"
ON = {"devicePlugin": {"enabled": False}, "draDriver": {"enabled": True}}


def desired(spec: dict[str, Any], nodes: tuple[NodeFacts, ...] = (GPU_NODE,)) -> Desired:
    return desired_state(parse_spec(spec, source="test"), nodes, policy_uid="uid-1", environ={})


def by_kind_name(d: Desired) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in d.objects()}


def plugin(spec: dict[str, Any]) -> dict[str, Any]:
    return by_kind_name(desired(spec))[("DaemonSet", DS)]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_off_by_default_nothing_is_rendered_and_no_node_gets_the_label() -> None:
    d = desired({})
    assert not [o for o in d.objects() if o["kind"] == "DeviceClass" or o["metadata"]["name"] == DS]
    assert DRA_LABEL not in (d.node_patches["gpu-1"].labels)
    state = next(s for s in d.states if s.name == "state-dra-driver")
    assert not state.enabled


def test_enabled_gpu_nodes_are_labelled_and_the_daemonset_selects_them() -> None:
    d = desired(ON)
    assert d.node_patches["gpu-1"].labels[DRA_LABEL] == "true"
    ds = by_kind_name(d)[("DaemonSet", DS)]
    pod = ds["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {DRA_LABEL: "true"}
    assert pod["serviceAccountName"] == "nvidia-dra-driver-gpu"
    assert ds["metadata"]["namespace"] == "gpu-operator"
    assert ds["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]


def test_the_plugin_gets_the_kubelet_directories_cdi_root_and_driver_root() -> None:
    pod = plugin(ON)["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["name"] == "gpus"
    assert main["command"] == ["gpu-operator", "dra-driver"]
    assert main["image"].split("/")[-1].startswith("gpu-operator:")
    hosts = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    assert (
        hosts["plugins-registry"]
        == mounts["plugins-registry"]["mountPath"]
        == ("/var/lib/kubelet/plugins_registry")
    )
    assert hosts["plugins"] == mounts["plugins"]["mountPath"] == "/var/lib/kubelet/plugins"
    assert mounts["plugins"]["mountPropagation"] == "Bidirectional"
    assert hosts["cdi"] == mounts["cdi"]["mountPath"] == "/var/run/cdi"
    assert hosts["driver-root"] == "/run/nvidia/driver"  # the operator's driver
    assert mounts["driver-root"]["mountPath"] == "/driver-root"
    env = env_of(main)
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["CDI_ROOT"] == "/var/run/cdi"
    assert env["NVIDIA_DRIVER_ROOT"] == "/run/nvidia/driver"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["KUBELET_REGISTRAR_DIRECTORY_PATH"] == "/var/lib/kubelet/plugins_registry"
    assert env["KUBELET_PLUGINS_DIRECTORY_PATH"] == "/var/lib/kubelet/plugins"
    assert "FEATURE_GATES" not in env


def test_it_waits_for_toolkit_ready_like_the_device_plugin() -> None:
    pod = plugin(ON)["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["name"] == "toolkit-validation"
    assert init["command"] == [
        "gpu-operator",
        "wait-for",
        "/run/nvidia/validations/toolkit-ready",
    ]


def test_a_custom_kubelet_root_and_a_preinstalled_driver_move_the_paths() -> None:
    spec = {
        **ON,
        "hostPaths": {"kubeletRootDir": "/var/lib/k0s/kubelet"},
        "driver": {"enabled": False},
    }
    pod = plugin(spec)["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["KUBELET_PLUGINS_DIRECTORY_PATH"] == "/var/lib/k0s/kubelet/plugins"
    assert env["KUBELET_REGISTRAR_DIRECTORY_PATH"] == "/var/lib/k0s/kubelet/plugins_registry"
    assert env["NVIDIA_DRIVER_ROOT"] == "/"
    hosts = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert hosts["plugins"] == "/var/lib/k0s/kubelet/plugins"
    assert hosts["driver-root"] == "/"


def test_feature_gates_env_args_resources_and_node_selector_are_the_users() -> None:
    spec = {
        "devicePlugin": {"enabled": False},
        "draDriver": {
            "enabled": True,
            "featureGates": {"DynamicMIG": True, "MPSSupport": False},
            "env": [{"name": "CDI_ROOT", "value": "/etc/cdi"}, {"name": "X", "value": "1"}],
            "args": ["-v", "6"],
            "resources": {"limits": {"memory": "256Mi"}},
            "nodeSelector": {"pool": "dra"},
            "imagePullSecrets": ["regcred"],
        },
    }
    ds = plugin(spec)
    pod = ds["spec"]["template"]["spec"]
    main = pod["containers"][0]
    env = env_of(main)
    assert env["FEATURE_GATES"] == "DynamicMIG=true,MPSSupport=false"
    assert env["CDI_ROOT"] == "/etc/cdi"
    assert env["X"] == "1"
    assert main["args"] == ["-v", "6"]
    assert main["resources"] == {"limits": {"memory": "256Mi"}}
    assert pod["nodeSelector"] == {DRA_LABEL: "true", "pool": "dra"}
    assert {"name": "regcred"} in pod["imagePullSecrets"]


def test_nvidias_image_runs_its_own_entry_point() -> None:
    spec = {
        **ON,
        "draDriver": {
            "enabled": True,
            "repository": "nvcr.io/nvidia",
            "image": "dra-driver-nvidia-gpu",
            "version": "v0.5.0",
        },
    }
    main = plugin(spec)["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "nvcr.io/nvidia/dra-driver-nvidia-gpu:v0.5.0"
    assert main["command"] == ["gpu-kubelet-plugin"]
    assert env_of(main)["IMAGE_NAME"] == "nvcr.io/nvidia/dra-driver-nvidia-gpu:v0.5.0"


def test_the_device_classes_are_upstreams_cluster_scoped_and_owned() -> None:
    found = {k[1]: o for k, o in by_kind_name(desired(ON)).items() if k[0] == "DeviceClass"}
    assert set(found) == {"gpu.nvidia.com", "mig.nvidia.com"}
    shipped = {c["metadata"]["name"]: c["spec"] for c in device_classes()}
    for name, obj in found.items():
        assert obj["apiVersion"] == "resource.k8s.io/v1"
        assert "namespace" not in obj["metadata"]
        assert obj["metadata"]["labels"][PART_OF] == "gpu-operator"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "ClusterPolicy"
        assert obj["spec"] == shipped[name]


def test_a_node_labelled_dra_driver_false_keeps_its_label() -> None:
    node = NodeFacts(
        name="gpu-1",
        labels={**GPU_NODE.labels, DRA_LABEL: "false"},
        annotations={},
    )
    assert DRA_LABEL not in desired(ON, (node,)).node_patches["gpu-1"].labels


def test_the_rendered_feature_gates_are_what_the_plugin_reads() -> None:
    from gpu_operator.dra.settings import resolve_settings

    spec = {**ON, "draDriver": {"enabled": True, "featureGates": {"DynamicMIG": True}}}
    env = env_of(plugin(spec)["spec"]["template"]["spec"]["containers"][0])
    settings = resolve_settings({}, {"NODE_NAME": "gpu-1", "FEATURE_GATES": env["FEATURE_GATES"]})
    assert settings.dynamic_mig
    off = {**ON, "draDriver": {"enabled": True, "featureGates": {"DynamicMIG": False}}}
    env = env_of(plugin(off)["spec"]["template"]["spec"]["containers"][0])
    assert not resolve_settings(
        {}, {"NODE_NAME": "gpu-1", "FEATURE_GATES": env["FEATURE_GATES"]}
    ).dynamic_mig
