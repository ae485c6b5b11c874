"""Properties every rendering keeps, whatever the policy: upstream names and labels, the GPU
toleration, owner references, gating init containers, OnDelete for the driver, and a hash that
changes only for the objects a spec change touches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.errors import ConfigError
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.render import HASH_ANNOTATION

DATA = Path(__file__).parents[2] / "data" / "operator"


def rocky(
    name: str = "gpu-1", version: str = "8.5", kernel: str = "4.18.0-348.el8.x86_64"
) -> NodeFacts:
    return NodeFacts(
        name=name,
        labels={
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "rocky",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": version,
            "feature.node.kubernetes.io/kernel-version.full": kernel,
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
        },
        annotations={},
    )


def objects(
    spec_data: dict[str, Any], nodes: list[NodeFacts] | None = None
) -> dict[str, dict[str, Any]]:
    spec = parse_spec(spec_data, source="test")
    desired = desired_state(spec, [rocky()] if nodes is None else nodes, policy_uid="uid-1")
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in desired.objects()}


def daemonsets(rendered: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for key, o in rendered.items() if key.startswith("DaemonSet/")]


def test_every_daemonset_has_upstream_labels_the_gpu_toleration_and_an_owner() -> None:
    rendered = objects(
        {"nodeStatusExporter": {"enabled": True}, "daemonsets": {"labels": {"app": "x"}}}
    )
    assert len(daemonsets(rendered)) == 10
    for ds in daemonsets(rendered):
        name = ds["metadata"]["name"]
        pod = ds["spec"]["template"]
        assert pod["metadata"]["labels"]["app"] == name
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "gpu-operator"
        assert ds["spec"]["selector"] == {"matchLabels": {"app": name}}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "spec"
        ]["tolerations"]
        assert ds["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert len(ds["metadata"]["annotations"][HASH_ANNOTATION]) == 16


def test_operands_after_the_toolkit_wait_for_toolkit_ready() -> None:
    rendered = objects({"dcgm": {"enabled": True}})
    for name in (
        "nvidia-device-plugin-daemonset",
        "nvidia-dcgm",
        "nvidia-dcgm-exporter",
        "gpu-feature-discovery",
        "nvidia-mig-manager",
    ):
        init = rendered[f"DaemonSet/{name}"]["spec"]["template"]["spec"]["initContainers"][0]
        assert init["name"] == "toolkit-validation"
        assert init["command"] == [
            "gpu-operator",
            "wait-for",
            "/run/nvidia/validations/toolkit-ready",
        ]


def test_the_validator_runs_driver_toolkit_cuda_plugin_in_order() -> None:
    pod = objects({})["DaemonSet/nvidia-operator-validator"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == [
        "driver-validation", "toolkit-validation", "cuda-validation", "plugin-validation",
    ]  # fmt: skip


def test_the_driver_is_on_delete_and_node_critical_whatever_the_common_settings() -> None:
    driver = objects(
        {"daemonsets": {"updateStrategy": "RollingUpdate", "priorityClassName": "low"}}
    )["DaemonSet/nvidia-driver-daemonset"]
    assert driver["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert driver["spec"]["template"]["spec"]["priorityClassName"] == "system-node-critical"
    assert driver["spec"]["template"]["spec"]["hostPID"] is True


def test_rendering_twice_gives_the_same_hashes() -> None:
    assert objects({"mig": {"strategy": "mixed"}}) == objects({"mig": {"strategy": "mixed"}})


def hashes(rendered: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: o["metadata"]["annotations"][HASH_ANNOTATION] for k, o in rendered.items()}


def test_a_device_plugin_env_change_touches_only_the_plugin_daemonsets() -> None:
    before = hashes(objects({}))
    after = hashes(objects({"devicePlugin": {"env": [{"name": "X", "value": "1"}]}}))
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [
        "DaemonSet/nvidia-device-plugin-daemonset",
        "DaemonSet/nvidia-device-plugin-mps-control-daemon",
    ]


def test_a_mig_strategy_change_reaches_the_plugin_gfd_and_validator() -> None:
    before = hashes(objects({"mig": {"strategy": "single"}}))
    after = hashes(objects({"mig": {"strategy": "mixed"}}))
    changed = sorted(k.removeprefix("DaemonSet/") for k in before if before[k] != after[k])
    assert changed == [
        "gpu-feature-discovery", "nvidia-device-plugin-daemonset",
        "nvidia-device-plugin-mps-control-daemon", "nvidia-operator-validator",
    ]  # fmt: skip


def test_a_disabled_state_renders_nothing() -> None:
    rendered = objects({"dcgmExporter": {"enabled": False}, "gfd": {"enabled": False}})
    assert "DaemonSet/nvidia-dcgm-exporter" not in rendered
    assert "Service/nvidia-dcgm-exporter" not in rendered
    assert "DaemonSet/gpu-feature-discovery" not in rendered


def test_without_gpu_nodes_only_cluster_objects_are_rendered() -> None:
    assert sorted(objects({}, nodes=[])) == [
        "RuntimeClass/nvidia",
        "RuntimeClass/nvidia-cdi",
        "RuntimeClass/nvidia-legacy",
        "Service/gpu-operator",
    ]


def test_precompiled_drivers_get_one_daemonset_per_kernel() -> None:
    nodes = [rocky("a", kernel="5.14.0-1.el9.x86_64"), rocky("b", kernel="5.14.0-2.el9.x86_64")]
    rendered = objects(
        {
            "driver": {
                "usePrecompiled": True,
                "repository": "r",
                "image": "driver",
                "version": "580",
            }
        },
        nodes,
    )
    drivers = {k: o for k, o in rendered.items() if "driver-daemonset" in k}
    assert sorted(drivers) == [
        "DaemonSet/nvidia-driver-daemonset-5.14.0-1.el9-rocky8",
        "DaemonSet/nvidia-driver-daemonset-5.14.0-2.el9-rocky8",
    ]
    pod = drivers["DaemonSet/nvidia-driver-daemonset-5.14.0-1.el9-rocky8"]["spec"]["template"][
        "spec"
    ]
    assert pod["containers"][0]["image"] == "r/driver:580-5.14.0-1.el9.x86_64-rocky8"
    assert (
        pod["nodeSelector"]["feature.node.kubernetes.io/kernel-version.full"]
        == "5.14.0-1.el9.x86_64"
    )


def test_minor_versions_of_one_major_share_one_driver_daemonset() -> None:
    rendered = objects({}, [rocky("a", "8.5"), rocky("b", "8.6")])
    assert [k for k in rendered if "driver" in k] == [
        "ConfigMap/nvidia-driver-startup-probe",
        "DaemonSet/nvidia-driver-daemonset",
    ]


def test_a_half_specified_image_fails_the_render_naming_the_field() -> None:
    with pytest.raises(
        ConfigError, match=r"spec\.toolkit: version set but repository, image missing"
    ):
        objects({"toolkit": {"version": "v1.20.0"}})


def test_render_prints_a_json_list_of_the_seed_objects() -> None:
    result = CliRunner().invoke(
        app,
        [
            "render",
            "-f",
            str(DATA / "seed" / "policy.yaml"),
            "--nodes",
            str(DATA / "seed" / "nodes.yaml"),
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    images = {
        c["image"]
        for o in listing["items"]
        if o["kind"] == "DaemonSet"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8" in images


def test_images_prints_the_mirror_commands_for_the_seed() -> None:
    result = CliRunner().invoke(
        app,
        [
            "images",
            "-f",
            str(DATA / "seed" / "policy.yaml"),
            "--node-os",
            "rocky:8.5",
            "--mirror",
            "homelab.net",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "skopeo copy --all docker://nvcr.io/nvidia/driver:450.156.00-rocky8 "
        "docker://homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
    ) in result.output.splitlines()
