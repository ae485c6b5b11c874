"""``preflight``, ``images`` and ``render`` with ``driver.useNvidiaDriverCRD``: the driver images
are each NVIDIADriver CR's, per CR and OS pool, exactly those of the DaemonSets the operator
renders (the CRs from the ``-f`` stream, ``--nvidia-drivers`` or, for preflight, the cluster);
the ClusterPolicy's own driver image is not listed; a CR that cannot render fails preflight
naming its field, and a conflict is named on stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_global_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Node
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.nfd import GPU_PCI_LABELS, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator import nvidiadriver_crd
from gpu_operator.sandbox.apiserver import ServerThread

DATA = Path(__file__).parents[2] / "data" / "operator"
NVD = create_global_resource("nvidia.com", "v1alpha1", "NVIDIADriver", "nvidiadrivers")
ROCKY_IMAGE = "nvcr.io/nvidia/driver:570.148.08-rocky8"
UBUNTU_IMAGE = "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04"
POLICY_IMAGE = "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"


def driver(name: str, version: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"repository": "nvcr.io/nvidia", "image": "driver", **spec}
    if version:
        body["version"] = version
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "NVIDIADriver",
        "metadata": {"name": name},
        "spec": body,
    }


ROCKY = driver("rocky", "570.148.08", nodeSelector={OS_ID_LABEL: "rocky"})
UBUNTU = driver("ubuntu", "580.95.05", nodeSelector={OS_ID_LABEL: "ubuntu"})


def policy_file(tmp_path: Path, *crs: dict[str, Any]) -> Path:
    """The seed's ClusterPolicy with useNvidiaDriverCRD, the CRs in the same stream (as a
    ``helm template`` with deployDefaultCR gives the default one)."""
    policy = yaml.safe_load((DATA / "seed" / "policy.yaml").read_text())
    policy["spec"]["driver"]["useNvidiaDriverCRD"] = True
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump_all([policy, *crs]))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


OSES = ("--node-os", "rocky:8.5", "--node-os", "ubuntu:22.04")


def rendered_driver_images(policy: Path, nodes: Path) -> dict[str, str]:
    result = run("render", "-f", str(policy), "--nodes", str(nodes), "-o", "json")
    assert result.exit_code == 0, result.output
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in json.loads(result.output)["items"]
        if o["kind"] == "DaemonSet" and "-driver-" in o["metadata"]["name"]
    }


def nodes_file(tmp_path: Path) -> Path:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {GPU_PCI_LABELS[0]: "true", OS_ID_LABEL: os, OS_VERSION_LABEL: ver},
            },
        }
        for name, os, ver in (("rocky-1", "rocky", "8.5"), ("ubuntu-1", "ubuntu", "22.04"))
    ]
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump_all(nodes))
    return path


def test_preflight_lists_each_crs_pools_as_the_operator_renders_them(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, ROCKY, UBUNTU)
    nodes = nodes_file(tmp_path)
    result = run("preflight", "-f", str(policy), "--nodes", str(nodes))
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        [
            "nvidia-gpu-driver-rocky-rocky8",
            ROCKY_IMAGE,
            "nodes:",
            "rocky-1",
            "NVIDIADriver:",
            "rocky",
        ],
        [
            "nvidia-gpu-driver-ubuntu-ubuntu22.04",
            UBUNTU_IMAGE,
            "nodes:",
            "ubuntu-1",
            "NVIDIADriver:",
            "ubuntu",
        ],
    ]
    assert rendered_driver_images(policy, nodes) == {
        "nvidia-gpu-driver-rocky-rocky8": ROCKY_IMAGE,
        "nvidia-gpu-driver-ubuntu-ubuntu22.04": UBUNTU_IMAGE,
    }, "render gives the same DaemonSets and images"
    assert POLICY_IMAGE not in result.output, "the ClusterPolicy's own driver is not used"


def test_the_crs_may_come_from_their_own_file(tmp_path: Path) -> None:
    policy = policy_file(tmp_path)
    crs = tmp_path / "crs.yaml"
    crs.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [ROCKY, UBUNTU]}))
    result = run("images", "-f", str(policy), *OSES, "--nvidia-drivers", str(crs))
    assert result.exit_code == 0, result.output
    users = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert users[ROCKY_IMAGE] == "DaemonSet/nvidia-gpu-driver-rocky-rocky8"
    assert users[UBUNTU_IMAGE] == "DaemonSet/nvidia-gpu-driver-ubuntu-ubuntu22.04"
    assert POLICY_IMAGE not in users
    mirrored = run(
        "images", "-f", str(policy), *OSES, "--nvidia-drivers", str(crs), "--mirror", "m.io"
    )
    assert f"skopeo copy --all docker://{ROCKY_IMAGE} docker://m.io/{ROCKY_IMAGE}" in (
        mirrored.stdout.splitlines()
    )


def test_images_from_a_stream_on_stdin(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, ROCKY)
    result = CliRunner().invoke(
        app, ["images", "-f", "-", "--node-os", "rocky:8.5"], input=policy.read_text()
    )
    assert result.exit_code == 0, result.output
    assert ROCKY_IMAGE in result.stdout.split()


def test_a_cr_that_cannot_render_fails_preflight_naming_its_field(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, driver("rocky", None, nodeSelector={OS_ID_LABEL: "rocky"}))
    result = run("preflight", "-f", str(policy), "--node-os", "rocky:8.5")
    assert result.exit_code == 1
    assert "NVIDIADriver rocky: " in result.stderr
    assert "spec.version" in result.stderr
    assert "no NVIDIADriver CR drives a GPU node" in result.stdout


def test_a_conflict_is_named_and_the_older_cr_keeps_the_node(tmp_path: Path) -> None:
    everything = driver("all-gpus", "570.148.08")
    policy = policy_file(tmp_path, everything, driver("zz-rocky", "580.95.05"))
    result = run("preflight", "-f", str(policy), "--node-os", "rocky:8.5")
    assert result.exit_code == 0, result.output
    assert "NVIDIADriver zz-rocky selects node(s) os-0-0 that NVIDIADriver all-gpus" in (
        result.stderr
    )
    assert result.stdout.split()[:2] == ["nvidia-gpu-driver-all-gpus-rocky8", ROCKY_IMAGE]


def test_render_says_which_cr_drives_which_nodes(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, ROCKY, UBUNTU)
    result = run("render", "-f", str(policy), "--nodes", str(nodes_file(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "# NVIDIADriver rocky: nodes rocky-1\n" in result.stdout
    assert "# NVIDIADriver ubuntu: nodes ubuntu-1\n" in result.stdout


def test_a_wrong_api_version_is_refused(tmp_path: Path) -> None:
    bad = {**ROCKY, "apiVersion": "nvidia.com/v1"}
    policy = policy_file(tmp_path, bad)
    result = run("images", "-f", str(policy), "--node-os", "rocky:8.5")
    assert result.exit_code != 0
    assert str(result.exception) == (
        f"{policy}: NVIDIADriver 'rocky': apiVersion must be nvidia.com/v1alpha1, "
        "got 'nvidia.com/v1'"
    )


@pytest.mark.timeout(60)
def test_preflight_from_the_cluster_reads_its_crs(
    server_thread: ServerThread, client: Client, tmp_path: Path
) -> None:
    client.create(CustomResourceDefinition.from_dict(nvidiadriver_crd.build_crd()))
    for name, os, ver in (("rocky-1", "rocky", "8.5"), ("ubuntu-1", "ubuntu", "22.04")):
        labels = {GPU_PCI_LABELS[0]: "true", OS_ID_LABEL: os, OS_VERSION_LABEL: ver}
        client.create(Node(metadata=ObjectMeta(name=name, labels=labels)))
    client.create(NVD.from_dict(ROCKY))
    client.create(NVD.from_dict(UBUNTU))
    kubeconfig = server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    result = run(
        "preflight", "-f", str(policy_file(tmp_path)), "--from-cluster",
        "--kubeconfig", str(kubeconfig),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["nvidia-gpu-driver-rocky-rocky8", ROCKY_IMAGE],
        ["nvidia-gpu-driver-ubuntu-ubuntu22.04", UBUNTU_IMAGE],
    ]
