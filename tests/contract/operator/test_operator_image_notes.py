"""The operator against the API server emulator, fed the ClusterPolicy the real ``helm template``
renders from the seed's full command: it posts one Event per image decision the chart made
(``operator.version`` kept ours: a Warning; each NVIDIA image a pin chose: Normal), once per
generation, and renders NVIDIA's images with the commands those images ship."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Event, Namespace, Node

from gpu_operator.kube import RetryPolicy
from gpu_operator.operator.controller import ClusterPolicy, Controller, ControllerSettings
from gpu_operator.operator.crd import build_crd
from helpers.seed import SEED_SET_ARGS

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
DATA = ROOT / "tests" / "data" / "operator"
NS = "gpu-operator-resources"
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
SEED = SEED_SET_ARGS  # the seed's command, verbatim (issue 14)

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)"),
]


def seed_policy() -> dict[str, Any]:
    assert HELM is not None
    result = subprocess.run(
        [HELM, "template", "gpu-operator", str(CHART), "-n", NS, *SEED],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (policy,) = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "ClusterPolicy"]
    return dict(policy)


async def test_the_operator_posts_the_charts_image_decisions_once_and_runs_nvidias_commands(
    aclient: AsyncClient,
) -> None:
    await aclient.create(CustomResourceDefinition.from_dict(build_crd()))
    await aclient.create(Namespace(metadata=ObjectMeta(name=NS)))
    for node in yaml.safe_load((DATA / "seed" / "nodes.yaml").read_text()):
        node.pop("status", None)
        await aclient.create(Node.from_dict(node))
    await aclient.create(ClusterPolicy.from_dict(seed_policy()))
    c = Controller(
        aclient,
        ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01),
        now=lambda: "2026-11-27T13:00:00Z",
    )
    await c.sync()
    await c.reconcile_once()
    await c.reconcile_once()  # a second pass of the same generation posts nothing again
    events = [e async for e in aclient.list(Event, namespace="default")]
    about = [e for e in events if e.involvedObject.kind == "ClusterPolicy"]
    kept = [e for e in about if e.reason == "OperatorImageKept"]
    assert len(kept) == 1
    assert kept[0].type == "Warning"
    assert kept[0].message.startswith("operator.version=v1.9.0-ubi8: not a release of gpu-operator")
    assert "we are the operator, so it runs our ghcr.io/gpu-operator/gpu-operator:v0.1.0" in (
        kept[0].message
    )
    upstream = sorted(e.message.split(":", 1)[0] for e in about if e.reason == "UpstreamImage")
    assert upstream == [
        "driver.manager.version=v0.2.0-ubi8",
        "operator.initContainer.version=cuda",
        "toolkit.version=1.7.2-ubi8",
        "validator.version=v1.9.0-ubi8",
    ]
    assert all(e.type == "Normal" for e in about if e.reason == "UpstreamImage")

    dsets = {ds.metadata.name: ds.to_dict() async for ds in aclient.list(DaemonSet, namespace=NS)}
    toolkit = dsets["nvidia-container-toolkit-daemonset"]["spec"]["template"]["spec"]
    (ctr,) = toolkit["containers"]
    assert ctr["image"] == "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8"
    assert (ctr["command"], ctr["args"]) == (["nvidia-toolkit"], ["/usr/local/nvidia"])
    plugin = dsets["nvidia-device-plugin-daemonset"]["spec"]["template"]["spec"]
    (gate,) = [i for i in plugin["initContainers"] if i["name"] == "toolkit-validation"]
    assert gate["image"] == "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8"
    assert gate["command"] == ["sh", "-c"]
    driver = dsets["nvidia-driver-daemonset"]["spec"]["template"]["spec"]
    (manager,) = driver["initContainers"]
    assert manager["image"] == "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.2.0-ubi8"
    assert (manager["command"], manager["args"]) == (["driver-manager"], ["uninstall_driver"])
