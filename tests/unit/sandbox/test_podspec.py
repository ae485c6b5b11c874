"""From a pod spec to a local process: argv, env, mounts under the node root, image behaviour."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.hostpaths import MOUNTS_ENV, host_path
from gpu_operator.sandbox.podspec import (
    ImageCatalogue,
    bind_to,
    command_argv,
    process_spec,
    volume_paths,
)

POD: dict[str, Any] = {
    "metadata": {"name": "nvidia-mig-manager-abcde", "namespace": "gpu-operator", "uid": "u1"},
    "spec": {
        "nodeName": "gpu-node-1",
        "volumes": [
            {"name": "host-root", "hostPath": {"path": "/"}},
            {
                "name": "validations",
                "hostPath": {"path": "/run/nvidia/validations", "type": "DirectoryOrCreate"},
            },
            {
                "name": "config",
                "configMap": {
                    "name": "default-mig-parted-config",
                    "items": [{"key": "config.yaml", "path": "config-default.yaml"}],
                },
            },
        ],
    },
    "status": {"podIP": "127.1.0.7"},
}
CONTAINER: dict[str, Any] = {
    "name": "nvidia-mig-manager",
    "image": "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
    "command": ["nvidia-mig-manager"],
    "env": [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LISTEN", "value": ":9400"},
        {"name": "GREETING", "value": "on $(NODE_NAME)"},
        {
            "name": "FROM_CM",
            "valueFrom": {"configMapKeyRef": {"name": "default-mig-parted-config", "key": "flag"}},
        },
    ],
    "volumeMounts": [
        {"name": "host-root", "mountPath": "/host"},
        {"name": "validations", "mountPath": "/run/nvidia/validations"},
        {"name": "config", "mountPath": "/mig-parted-config/"},
    ],
}
CONFIG_MAPS = {
    ("gpu-operator", "default-mig-parted-config"): {"config.yaml": "version: v1\n", "flag": "on"}
}


def lookup(namespace: str, name: str) -> dict[str, str] | None:
    return CONFIG_MAPS.get((namespace, name))


def test_a_container_of_our_image_becomes_its_gpu_operator_subcommand_with_the_pods_env(
    tmp_path: Path,
) -> None:
    root, pod_dir = tmp_path / "node", tmp_path / "pod"
    volumes = volume_paths(POD, root, pod_dir, lookup)
    spec = process_spec(
        POD,
        CONTAINER,
        node_root=root,
        pod_dir=pod_dir,
        volumes=volumes,
        config_maps=lookup,
        catalogue=ImageCatalogue(),
        base_env={"BASE": "1"},
    )
    assert spec.behaviour == "run"
    assert spec.argv[0].endswith("/gpu-operator")
    assert spec.argv[1:] == ["mig-manager"]
    assert spec.env["NODE_NAME"] == "gpu-node-1"
    assert spec.env["GREETING"] == "on gpu-node-1"
    assert spec.env["FROM_CM"] == "on"
    assert spec.env["LISTEN"] == "127.1.0.7:9400"
    assert spec.env["BASE"] == "1"
    mounts = json.loads(spec.env[MOUNTS_ENV])
    assert mounts["/host"] == str(root)
    assert (
        host_path("/run/nvidia/validations/toolkit-ready", spec.env)
        == root / "run/nvidia/validations/toolkit-ready"
    )
    assert (root / "run/nvidia/validations").is_dir()
    written = host_path("/mig-parted-config/config-default.yaml", spec.env)
    assert written.read_text() == "version: v1\n"


@pytest.mark.parametrize(
    ("image", "behaviour"),
    [
        pytest.param(
            "ghcr.io/gpu-operator/gpu-operator:v0.1.0", "run", id="our image runs for real"
        ),
        pytest.param(
            "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8",
            "driver",
            id="NVIDIA's driver is simulated",
        ),
        pytest.param(
            "nvcr.io/nvidia/cloud-native/dcgm:3.3.0-1-ubuntu22.04",
            "dcgm",
            id="the DCGM host engine is simulated",
        ),
        pytest.param(
            "nvcr.io/nvidia/cuda:12.4.1-base-ubi8", "workload", id="a CUDA image is a workload"
        ),
        pytest.param(
            "quay.io/unknown/thing:1",
            "missing",
            id="an image outside the catalogue can't be pulled",
        ),
    ],
)
def test_the_image_catalogue_decides_how_a_container_runs(image: str, behaviour: str) -> None:
    assert ImageCatalogue().behaviour(image) == behaviour


def test_an_image_marked_missing_is_missing_even_where_the_catalogue_has_it() -> None:
    catalogue = ImageCatalogue(missing=("*/driver:450.156.00-rocky8",))
    assert catalogue.behaviour("homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8") == "missing"
    assert catalogue.behaviour("nvcr.io/nvidia/driver:550.54.15-rocky8") == "driver"


def test_upstream_executable_names_run_their_subcommand_and_shell_commands_stay_as_they_are() -> (
    None
):
    assert command_argv(["nvidia-toolkit"], [])[1:] == ["toolkit", "install"]
    assert command_argv(["gpu-operator", "wait-for"], ["/x"])[1:] == ["wait-for", "/x"]
    assert command_argv(["sh", "-c"], ["echo ok"]) == ["sh", "-c", "echo ok"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (":9400", "127.1.0.7:9400"),
        ("0.0.0.0:8080", "127.1.0.7:8080"),
        ("localhost:1", "localhost:1"),
        ("9400", "9400"),
    ],
)
def test_listen_addresses_for_every_interface_bind_to_the_pods_own_address(
    value: str, expected: str
) -> None:
    assert bind_to(value, "127.1.0.7") == expected


def test_an_upstream_executable_brings_its_default_env_as_the_console_script_would(
    tmp_path: Path,
) -> None:
    container = {
        "name": "ctr",
        "image": "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
        "command": ["nvidia-toolkit"],
    }
    spec = process_spec(
        POD,
        container,
        node_root=tmp_path,
        pod_dir=tmp_path / "pod",
        volumes={},
        config_maps=lookup,
        catalogue=ImageCatalogue(),
        base_env={},
    )
    assert spec.env["NO_DAEMON"] == "false"
    assert spec.argv[1:] == ["toolkit", "install"]
