"""The NVIDIADriver CRD and the chart's default CR, with the real ``helm`` and the real
``kubectl`` against the API server emulator: ``--set driver.nvidiaDriverCRD.enabled=true,
driver.nvidiaDriverCRD.deployDefaultCR=true`` renders the policy with useNvidiaDriverCRD and a
default NVIDIADriver our CRD accepts; NVIDIA's sample NVIDIADriver is accepted as written (the
emulator fills its defaults, as an API server does) and refused with a typo or an out-of-enum
value, naming the field."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_operator.operator.nvidiadriver_crd import CRD_FILE
from gpu_operator.operator.nvidiadriver_v1alpha1 import parse_nvidiadriver_spec
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
from helpers.kubectl import KUBECTL, Kubectl, kubectl_runner

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
SAMPLE = ROOT / "tests" / "data" / "operator" / "upstream-nvidiadriver-sample.yaml"
CRD = yaml.safe_load((CHART / "crds" / CRD_FILE).read_text())
ON = "driver.nvidiaDriverCRD.enabled=true,driver.nvidiaDriverCRD.deployDefaultCR=true"

pytestmark = [
    pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)"),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed"),
    pytest.mark.timeout(60),
]


def template(*args: str) -> list[dict[str, Any]]:
    assert HELM is not None
    result = subprocess.run(
        [HELM, "template", "gpu-operator", str(CHART), "-n", "gpu-operator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    """The real kubectl against an emulator that serves our NVIDIADriver CRD."""
    with ServerThread(ApiServer(bookmark_interval_s=0.5)) as thread:
        thread.server.write_kubeconfig(tmp_path / "kubeconfig")
        run = kubectl_runner(tmp_path / "kubeconfig", tmp_path / "cache")
        run("apply", "-f", str(CHART / "crds" / CRD_FILE))
        yield run


def test_the_flags_render_the_policy_switch_and_a_default_cr_our_crd_accepts(
    kubectl: Kubectl,
) -> None:
    objects = template("--set", ON)
    (policy,) = of_kind(objects, "ClusterPolicy")
    assert policy["spec"]["driver"]["useNvidiaDriverCRD"] is True
    (cr,) = of_kind(objects, "NVIDIADriver")
    assert (cr["apiVersion"], cr["metadata"]["name"]) == ("nvidia.com/v1alpha1", "default")
    assert cr["spec"]["default"] is True
    assert "nodeSelector" not in cr["spec"]
    assert (cr["spec"]["repository"], cr["spec"]["image"]) == ("nvcr.io/nvidia", "driver")
    assert cr["spec"]["version"] == policy["spec"]["driver"]["version"]
    parse_nvidiadriver_spec(cr["spec"], source="helm template")
    created = kubectl("create", "-f", "-", stdin=yaml.safe_dump(cr))
    assert created.stdout.strip() == "nvidiadriver.nvidia.com/default created"
    got = kubectl("get", "nvd", "default", "-o", "yaml").stdout
    assert yaml.safe_load(got)["spec"] == cr["spec"]


def test_a_node_selector_makes_the_default_cr_a_pool_of_its_own() -> None:
    objects = template("--set", ON, "--set", "driver.nvidiaDriverCRD.nodeSelector.pool=rocky")
    (cr,) = of_kind(objects, "NVIDIADriver")
    assert cr["spec"]["default"] is False
    assert cr["spec"]["nodeSelector"] == {"pool": "rocky"}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="defaults"),
        pytest.param(
            [
                "--set",
                "driver.nvidiaDriverCRD.enabled=true,driver.nvidiaDriverCRD.deployDefaultCR=false",
            ],
            id="no default CR asked",
        ),
        pytest.param(["--set", f"{ON},driver.enabled=false"], id="driver disabled"),
    ],
)
def test_no_cr_unless_asked(args: list[str]) -> None:
    assert of_kind(template(*args), "NVIDIADriver") == []


def test_the_chart_ships_the_crd_and_the_operator_may_read_crs_and_write_their_status() -> None:
    assert CRD["metadata"]["name"] == "nvidiadrivers.nvidia.com"
    rules = [
        (tuple(r["resources"]), tuple(r["verbs"]))
        for role in of_kind(template(), "ClusterRole")
        for r in role.get("rules") or ()
        if "nvidia.com" in r.get("apiGroups", ())
    ]
    assert (("nvidiadrivers",), ("get", "list", "watch")) in rules
    assert (("nvidiadrivers/status",), ("get", "update", "patch")) in rules


def sample() -> dict[str, Any]:
    """NVIDIA's sample as written: the API server (emulated) fills ``spec.default``."""
    doc: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    return doc


def test_nvidias_sample_is_accepted(kubectl: Kubectl) -> None:
    created = kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(sample()))
    assert (
        created.stdout.strip() == "nvidiadriver.nvidia.com/nvidiadriver-sample serverside-applied"
    )
    listed = kubectl("get", "nvidiadrivers").stdout.split()
    assert listed[:4] == ["NAME", "STATUS", "DEFAULT", "AGE"]
    assert "nvidiadriver-sample" in listed


@pytest.mark.parametrize(
    ("change", "said"),
    [
        pytest.param({"verison": "570.148.08"}, 'unknown field "spec.verison"', id="a typo"),
        pytest.param({"driverType": "cuda"}, "spec.driverType: Unsupported value", id="enum"),
        pytest.param(
            {"kernelModuleType": "closed"}, "spec.kernelModuleType: Unsupported value", id="enum 2"
        ),
    ],
)
def test_nvidias_sample_with_a_mistake_is_refused_naming_the_field(
    kubectl: Kubectl, change: dict[str, Any], said: str
) -> None:
    doc = sample()
    doc["spec"].update(change)
    result = kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(doc), check=False)
    assert result.returncode != 0
    assert said in result.stderr
    assert "nvidiadriver-sample" not in kubectl("get", "nvidiadrivers").stdout
