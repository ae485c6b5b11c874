"""NVIDIA's operand images in the sandbox: their entry points run our implementation, a shell
script's host paths land under the node's root, an entry point the image lacks is a clear crash,
and a tag of ours that does not exist can't be pulled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpu_operator import __version__
from gpu_operator.sandbox.podspec import ImageCatalogue, process_spec
from gpu_operator.sandbox.upstream_images import remap_script

POD: dict[str, Any] = {
    "metadata": {"name": "nvidia-driver-daemonset-x", "namespace": "gpu-operator-resources"},
    "spec": {"nodeName": "gpu-node-1"},
    "status": {"podIP": "127.1.0.9"},
}


def spec_of(container: dict[str, Any], tmp_path: Path) -> Any:
    return process_spec(
        POD,
        container,
        node_root=tmp_path / "node",
        pod_dir=tmp_path / "pod",
        volumes={"validations": tmp_path / "node/run/nvidia/validations"},
        config_maps=lambda namespace, name: None,
        catalogue=ImageCatalogue(),
        base_env={},
    )


@pytest.mark.parametrize(
    ("image", "command", "args", "subcommand"),
    [
        pytest.param(
            "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.2.0-ubi8",
            ["driver-manager"],
            ["uninstall_driver"],
            ["driver-manager", "uninstall_driver"],
            id="k8s-driver-manager's driver-manager is our driver manager",
        ),
        pytest.param(
            "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
            [],
            [],
            ["toolkit", "install"],
            id="container-toolkit's entry point is our toolkit installer",
        ),
        pytest.param(
            "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8",
            ["nvidia-validator"],
            [],
            ["validator"],
            id="gpu-operator-validator's nvidia-validator is our validator",
        ),
        pytest.param(
            "nvcr.io/nvidia/k8s-device-plugin:v0.17.0",
            ["/usr/bin/gpu-feature-discovery"],
            [],
            ["feature-discovery"],
            id="an absolute entry point path in the device plugin image is its GFD",
        ),
        pytest.param(
            "nvcr.io/nvidia/k8s/dcgm-exporter:2.3.1-2.6.1-ubi8",
            [],
            ["-f", "/etc/dcgm-exporter/dcp-metrics-included.csv"],
            ["exporter", "-f", "/etc/dcgm-exporter/dcp-metrics-included.csv"],
            id="dcgm-exporter's entry point takes the pod's args",
        ),
    ],
)
def test_nvidias_operand_images_run_our_implementation_of_their_entry_points(
    tmp_path: Path, image: str, command: list[str], args: list[str], subcommand: list[str]
) -> None:
    spec = spec_of({"name": "c", "image": image, "command": command, "args": args}, tmp_path)
    assert spec.behaviour == "run"
    assert spec.argv[0].endswith("/gpu-operator")
    assert spec.argv[1:] == subcommand


def test_an_entry_point_the_upstream_image_lacks_is_a_crash_that_names_it(tmp_path: Path) -> None:
    spec = spec_of(
        {
            "name": "c",
            "image": "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
            "command": ["gpu-operator", "toolkit", "install"],
        },
        tmp_path,
    )
    assert spec.behaviour == "unplayable"
    assert "container-toolkit:1.7.2-ubi8 has no entry point 'gpu-operator'" in spec.crash
    assert "nvidia-toolkit" in spec.crash


def test_a_tag_of_our_image_other_than_ours_does_not_exist_in_the_sandbox_registry() -> None:
    catalogue = ImageCatalogue()
    assert catalogue.behaviour(f"ghcr.io/gpu-operator/gpu-operator:v{__version__}") == "run"
    assert catalogue.behaviour("ghcr.io/gpu-operator/gpu-operator:v1.9.0-ubi8") == "missing"


def test_a_shell_script_in_an_upstream_image_waits_on_the_nodes_own_files(tmp_path: Path) -> None:
    script = "until [ -f /run/nvidia/validations/toolkit-ready ]; do sleep 5; done"
    spec = spec_of(
        {
            "name": "toolkit-validation",
            "image": "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8",
            "command": ["sh", "-c"],
            "args": [script],
            "volumeMounts": [{"name": "validations", "mountPath": "/run/nvidia/validations"}],
        },
        tmp_path,
    )
    local = tmp_path / "node/run/nvidia/validations"
    assert spec.argv == ["sh", "-c", script.replace("/run/nvidia/validations", str(local))]


def test_script_remapping_replaces_whole_path_components_only() -> None:
    mounts = {"/host": "/n/root", "/run/nvidia": "/n/run"}
    argv = ["sh", "-c", "ls /host/etc /hostname; cat '/run/nvidia/x'; echo /run/nvidiax"]
    assert remap_script(argv, mounts) == [
        "sh",
        "-c",
        "ls /n/root/etc /hostname; cat '/n/run/x'; echo /run/nvidiax",
    ]
