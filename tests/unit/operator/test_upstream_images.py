"""The upstream image table: NVIDIA's image of each operand by version (GFD and the validator
moved), what counts as our image, the notes the chart leaves and the Events they become, and
the renderers giving NVIDIA's images the commands those images ship."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpu_operator.operator.cluster import node_facts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.reconcile import deprecation_events
from gpu_operator.operator.upstream_images import (
    NOTES_ANNOTATION,
    OUR_RELEASES,
    OUR_VERSION,
    at_least,
    chart_table,
    image_notes,
    is_ours,
    known_nvidia_images,
    note_event,
    nvidia_image,
    split_reference,
)

ROOT = Path(__file__).parents[3]
NODE = {
    "metadata": {
        "name": "gpu-0",
        "labels": {
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
        },
    }
}


@pytest.mark.parametrize(
    ("key", "version", "expected"),
    [
        ("toolkit", "1.7.2-ubi8", "nvcr.io/nvidia/k8s/container-toolkit"),
        ("driver.manager", "v0.2.0-ubi8", "nvcr.io/nvidia/cloud-native/k8s-driver-manager"),
        ("validator", "v1.9.0-ubi8", "nvcr.io/nvidia/cloud-native/gpu-operator-validator"),
        ("validator", "v24.9.2", "nvcr.io/nvidia/cloud-native/gpu-operator-validator"),
        ("validator", "v25.10.0", "nvcr.io/nvidia/gpu-operator"),
        ("gfd", "v0.4.1", "nvcr.io/nvidia/gpu-feature-discovery"),
        ("gfd", "v0.8.2-ubi8", "nvcr.io/nvidia/gpu-feature-discovery"),
        ("gfd", "v0.15.0", "nvcr.io/nvidia/k8s-device-plugin"),
        ("gfd", "latest", "nvcr.io/nvidia/k8s-device-plugin"),
        ("devicePlugin", "v0.10.0-ubi8", "nvcr.io/nvidia/k8s-device-plugin"),
        ("migManager", "v0.2.0-ubuntu20.04", "nvcr.io/nvidia/cloud-native/k8s-mig-manager"),
        ("dcgmExporter", "2.3.1-2.6.0-ubuntu20.04", "nvcr.io/nvidia/k8s/dcgm-exporter"),
        ("dcgm", "2.3.1-ubi8", "nvcr.io/nvidia/cloud-native/dcgm"),
        ("operator.initContainer", "11.2.1-base-ubi8", "nvcr.io/nvidia/cuda"),
    ],
)
def test_a_version_pin_names_nvidias_image_of_that_operand(
    key: str, version: str, expected: str
) -> None:
    entry = nvidia_image(key, version)
    assert f"{entry.repository}/{entry.image}" == expected


def test_the_sandbox_image_names_are_the_table_s() -> None:
    names = {image for _, image in known_nvidia_images()}
    assert {
        "k8s-driver-manager",
        "container-toolkit",
        "gpu-operator-validator",
        "k8s-device-plugin",
        "gpu-feature-discovery",
        "k8s-mig-manager",
        "dcgm-exporter",
        "cuda",
        "dcgm",
    } <= names


@pytest.mark.parametrize(
    ("version", "since", "expected"),
    [
        ("v0.15.0", "0.15.0", True),
        ("v0.14.9-ubi8", "0.15.0", False),
        ("0.16", "0.15.0", True),
        ("v25.10.0", "25.10.0", True),
        ("v24.9.2", "25.10.0", False),
        ("latest", "0.15.0", True),
        ("v1", "", True),
    ],
)
def test_at_least_compares_the_leading_numbers(version: str, since: str, expected: bool) -> None:
    assert at_least(version, since) is expected


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
         ("nvcr.io/nvidia/k8s", "container-toolkit", "1.7.2-ubi8")),
        ("localhost:5000/gpu-operator/gpu-operator:v0.1.0",
         ("localhost:5000/gpu-operator", "gpu-operator", "v0.1.0")),
        ("r.io/n/driver@sha256:abc", ("r.io/n", "driver", "sha256:abc")),
        ("localhost:5000/cuda", ("localhost:5000", "cuda", "")),
    ],
)  # fmt: skip
def test_a_reference_splits_into_repository_name_and_tag(
    reference: str, parts: tuple[str, str, str]
) -> None:
    assert split_reference(reference) == parts


@pytest.mark.parametrize(
    ("reference", "ours"),
    [
        (f"ghcr.io/gpu-operator/gpu-operator:{OUR_VERSION}", True),
        ("homelab.net/ghcr.io/gpu-operator/gpu-operator:v0.1.0", True),
        ("nvcr.io/nvidia/gpu-operator:v25.10.0", False),
        ("homelab.net/nvcr.io/nvidia/gpu-operator:v25.10.0", False),
        ("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8", False),
        ("nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8", False),
    ],
)
def test_our_image_is_told_from_nvidias_by_name_and_repository(reference: str, ours: bool) -> None:
    assert is_ours(reference) is ours


def test_the_chart_reads_the_table_generated_from_this_module() -> None:
    assert (ROOT / "deployments/gpu-operator/upstream-images.yaml").read_text() == chart_table()


def test_the_charts_app_version_is_one_of_our_releases() -> None:
    chart = (ROOT / "deployments/gpu-operator/Chart.yaml").read_text()
    (app,) = [line.split(":", 1)[1].strip() for line in chart.splitlines() if "appVersion" in line]
    assert app in OUR_RELEASES


NOTES = (
    "operator.version=v1.9.0-ubi8: not a release of gpu-operator (an NVIDIA operator version?); "
    "we are the operator, so it runs our ghcr.io/gpu-operator/gpu-operator:v0.1.0\n"
    "toolkit.version=1.7.2-ubi8: NVIDIA's toolkit image, "
    "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8\n"
    "validator: nvcr.io/nvidia/gpu-operator without NVIDIA's tag; it runs our "
    "ghcr.io/gpu-operator/gpu-operator:v0.1.0\n"
)


def policy_with_notes(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "cluster-policy", "annotations": {NOTES_ANNOTATION: NOTES}},
        "spec": spec or {},
    }


def test_each_image_note_becomes_one_event_of_its_kind() -> None:
    assert [note_event(line)[0::2] for line in image_notes(policy_with_notes())] == [
        ("OperatorImageKept", "Warning"),
        ("UpstreamImage", "Normal"),
        ("OurImageKept", "Warning"),
    ]
    assert note_event("operator.initContainer.version=cuda:11.2.1-base-ubi8: read as …")[0] == (
        "UpstreamImage"
    )


def test_the_operator_posts_the_charts_image_notes_with_its_deprecations() -> None:
    events = deprecation_events(policy_with_notes({"operator": {"defaultRuntime": "docker"}}))
    assert [e.reason for e in events] == [
        "DeprecatedField",
        "OperatorImageKept",
        "UpstreamImage",
        "OurImageKept",
    ]
    assert events[1].message.startswith("operator.version=v1.9.0-ubi8: ")
    assert all(e.policy == "cluster-policy" for e in events)
    assert deprecation_events({"metadata": {"name": "p"}, "spec": {}}) == []


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    desired = desired_state(parse_spec(spec, source="test"), [node_facts(NODE)])
    out = []
    for obj in desired.objects():
        if obj["kind"] == "DaemonSet":
            pod = obj["spec"]["template"]["spec"]
            out += [
                {**c, "daemonset": obj["metadata"]["name"]}
                for c in [*pod.get("initContainers", ()), *pod["containers"]]
            ]
    return out


NVIDIA_SEED = {
    "mig": {"strategy": "mixed"},
    "validator": {
        "repository": "nvcr.io/nvidia/cloud-native",
        "image": "gpu-operator-validator",
        "version": "v1.9.0-ubi8",
    },
    "toolkit": {
        "repository": "nvcr.io/nvidia/k8s",
        "image": "container-toolkit",
        "version": "1.7.2-ubi8",
    },
    "driver": {
        "repository": "homelab.net/nvcr.io/nvidia",
        "image": "driver",
        "version": "450.156.00",
        "manager": {
            "repository": "nvcr.io/nvidia/cloud-native",
            "image": "k8s-driver-manager",
            "version": "v0.2.0-ubi8",
        },
    },
}


def test_no_container_of_an_nvidia_image_runs_our_entry_point() -> None:
    every = containers(NVIDIA_SEED)
    foreign = [c for c in every if not is_ours(c["image"])]
    assert {c["name"] for c in foreign} >= {
        "toolkit-validation",
        "driver-validation",
        "k8s-driver-manager",
        "nvidia-container-toolkit-ctr",
    }
    for c in foreign:
        assert c["command"][0] != "gpu-operator", (c["daemonset"], c["name"], c["command"])


def is_wait(c: dict[str, Any]) -> bool:
    """An operand's gate on toolkit-ready (the validator's own init runs the validation)."""
    return bool(c["name"] == "toolkit-validation" and c["daemonset"] != "nvidia-operator-validator")


def test_nvidias_validator_gates_operands_with_upstreams_shell_loop() -> None:
    waits = [c for c in containers(NVIDIA_SEED) if is_wait(c)]
    assert len(waits) >= 4  # device plugin, GFD, dcgm-exporter, MIG manager, …
    for c in waits:
        assert c["image"] == "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8"
        assert c["command"] == ["sh", "-c"]
        assert c["args"] == [
            "until [ -f /run/nvidia/validations/toolkit-ready ]; do echo waiting for nvidia "
            "container stack to be setup; sleep 5; done"
        ]


def test_our_validator_gates_with_our_inotify_wait() -> None:
    waits = [c for c in containers({}) if is_wait(c)]
    assert waits
    for c in waits:
        assert is_ours(c["image"])
        assert c["command"] == [
            "gpu-operator",
            "wait-for",
            "/run/nvidia/validations/toolkit-ready",
        ]
        assert "args" not in c


def test_nvidias_toolkit_gets_its_install_dir_as_destination_and_ours_does_not() -> None:
    (theirs,) = [c for c in containers(NVIDIA_SEED) if c["name"] == "nvidia-container-toolkit-ctr"]
    assert theirs["image"] == "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8"
    assert (theirs["command"], theirs["args"]) == (["nvidia-toolkit"], ["/usr/local/nvidia"])
    (mine,) = [c for c in containers({}) if c["name"] == "nvidia-container-toolkit-ctr"]
    assert (mine["command"], "args" in mine) == (["nvidia-toolkit"], False)
