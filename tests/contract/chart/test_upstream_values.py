"""NVIDIA users' own values files work unchanged with the real ``helm``: every upstream values
file we hold renders a ClusterPolicy that our model and CRD accept, upstream's documented
``--set`` spellings are taken, the keys we do not act on are listed in NOTES ("accepted, not
used"), and a typo is refused in one line naming the key and the known name it nearly is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_operator.operator.crd import spec_schema
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, parse_spec
from gpu_operator.sandbox.apiserver.validation import check_schema, prune, unknown_fields

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
SHARED = ROOT.parent / "shared" / "upstream-artifacts"
INPUTS = ROOT / "scripts" / "upstream-inputs"

pytestmark = pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)")

# Every values file the generator reads (NVIDIA's own, and forks' and vendored copies of it at
# other releases: scripts/upstream-inputs/README.md says where each came from), plus the shared
# copies of main and v1.9.0.
VALUES_FILES = [
    SHARED / "values-main.yaml",
    SHARED / "values-v1.9.0.yaml",
    *sorted(INPUTS.glob("values-*.yaml")),
]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)


def policy_of(*args: str) -> tuple[dict[str, Any], ClusterPolicySpec]:
    result = helm("template", "x", str(CHART), *args)
    assert result.returncode == 0, result.stderr
    (cr,) = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "ClusterPolicy"]
    return cr["spec"], parse_spec(cr["spec"], source="helm template")


def notes(*args: str) -> str:
    result = helm("install", "x", str(CHART), "--dry-run=client", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: p.name)
def test_an_upstream_values_file_renders_a_policy_our_model_and_crd_accept(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} absent (NVIDIA's files for this test live in ../shared)")
    data, _ = policy_of("-f", str(path))
    schema = spec_schema()
    assert unknown_fields(data, schema) == []
    assert check_schema(prune(data, schema), schema) == []


def test_v1_9_security_contexts_reach_the_policy() -> None:
    path = SHARED / "values-v1.9.0.yaml"
    if not path.exists():
        pytest.skip(f"{path} absent")
    _, spec = policy_of("-f", str(path))
    assert spec.driver.securityContext == {"privileged": True, "seLinuxOptions": {"level": "s0"}}
    assert spec.devicePlugin.securityContext == {"privileged": True}


def test_upstream_set_lines_that_helm_types_as_numbers_are_taken() -> None:
    _, spec = policy_of(
        "--set", "driver.version=535", "--set", "driver.usePrecompiled=true",
        "--set", "daemonsets.rollingUpdate.maxUnavailable=2",
    )  # fmt: skip
    assert spec.driver.version == "535"
    assert spec.daemonsets.rollingUpdate is not None
    assert spec.daemonsets.rollingUpdate.maxUnavailable == "2"


def test_upstream_keys_we_act_on_reach_the_policy() -> None:
    _, spec = policy_of(
        "--set", "validator.hostNetwork=true",
        "--set", "driver.secretEnv=drv",
        "--set", "driver.licensingConfig.secretName=lic",
        "--set", "driver.livenessProbe.periodSeconds=30",
        "--set", "dcgmExporter.enablePodLabels=true",
        "--set", "dcgmExporter.podLabelAllowlistRegex=^app$",
        "--set", "dcgmExporter.serviceMonitor.scrapeTimeout=5s",
        "--set", "dcgm.hostPort=5556",
    )  # fmt: skip
    assert spec.validator.hostNetwork is True
    assert spec.driver.secretEnv == "drv"
    assert spec.driver.licensingConfig is not None
    assert spec.driver.licensingConfig.secretName == "lic"
    assert spec.driver.livenessProbe is not None
    assert spec.driver.livenessProbe.periodSeconds == 30
    assert spec.dcgmExporter.enablePodLabels is True
    assert spec.dcgmExporter.podLabelAllowlistRegex == ["^app$"]
    assert spec.dcgmExporter.serviceMonitor is not None
    assert spec.dcgmExporter.serviceMonitor.scrapeTimeout == "5s"
    assert spec.dcgm.hostPort == 5556


def test_notes_list_the_values_set_that_do_nothing_here() -> None:
    text = notes("--set", "driver.nvidiaDriverCRD.enabled=true", "--set", "gds.enabled=true")
    assert "accepted, not used" in text
    assert "driver.nvidiaDriverCRD" not in text  # acted on: docs/nvidiadriver.md
    assert "gds: GPUDirect Storage" in text
    assert "accepted, not used" not in notes()


def test_notes_of_a_v1_6_era_file_name_its_per_operand_scheduling_keys() -> None:
    text = notes("-f", str(INPUTS / "values-v1.6-era.yaml"))
    for line in (
        "driver.nodeSelector: v1.6-era per-operand scheduling",
        "gfd.migStrategy: v1.6-era: use mig.strategy",
        "toolkit.tolerations: v1.6-era per-operand tolerations",
    ):
        assert line in text


def test_notes_of_a_v1_7_file_name_its_per_operand_priority_classes() -> None:
    text = notes("-f", str(INPUTS / "values-v1.7.0.yaml"))
    for line in (
        "driver.priorityClassName: v1.7-era per-operand priority class",
        "validator.tolerations: v1.6-era per-operand tolerations",
        "migManager.nodeSelector: v1.6-era per-operand scheduling",
    ):
        assert line in text
    assert "operator.priorityClassName" not in text  # the operator Deployment uses it


def test_keys_older_releases_set_reach_the_policy() -> None:
    """v1.8.1's dcgm/dcgmExporter pull secrets, v22.9's dcgmExporter metrics ConfigMap and
    v1.6-era plugin/exporter args are acted on, not dropped."""
    _, spec = policy_of("-f", str(INPUTS / "values-v1.8.1.yaml"))
    assert spec.dcgm.imagePullSecrets == ["jfrog-artifactory"]
    assert spec.dcgmExporter.imagePullSecrets == ["jfrog-artifactory"]
    assert spec.operator.initContainer is not None
    assert spec.operator.initContainer.imagePullSecrets == ["jfrog-artifactory"]
    _, spec = policy_of("-f", str(INPUTS / "values-v22.9.2.yaml"))
    assert spec.dcgmExporter.config is not None
    assert spec.dcgmExporter.config.name == "metrics-config"
    assert spec.mig.strategy == "mixed"
    _, spec = policy_of("-f", str(INPUTS / "values-v1.6.2-era.yaml"))
    assert spec.devicePlugin.args is not None
    assert "--mig-strategy=single" in spec.devicePlugin.args


def test_the_nvidiadriver_crd_flag_reaches_the_policy_and_is_acted_on() -> None:
    _, spec = policy_of("--set", "driver.nvidiaDriverCRD.enabled=true")
    assert spec.driver.useNvidiaDriverCRD is True
    assert spec.driver.enabled is not False
    assert not any(line.startswith("spec.driver.useNvidiaDriverCRD:") for line in spec.not_used)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "validator.hostNetwrk=true"],
            "at '/validator/hostNetwrk': value must be 'did you mean validator.hostNetwork?'",
        ),
        (
            ["--set", "operator.logging.develmode=true"],
            "value must be 'did you mean operator.logging.develMode?'",
        ),
        (
            ["--set", "driver.nvidiaDriverCRD.enable=true"],
            "did you mean driver.nvidiaDriverCRD.enabled?",
        ),
        (["--set", "driver.xyzzy=1"], "at '/driver': additional properties 'xyzzy' not allowed"),
    ],
)
def test_a_typo_is_refused_naming_the_key_and_the_nearest_name(
    args: list[str], message: str
) -> None:
    result = helm("template", "x", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("- at")]) == 1
