"""The Helm chart, driven by the real ``helm``: it lints, its values schema refuses typos and bad
enums, and ``helm template`` renders valid objects and a ClusterPolicy equivalent to what the
same ``--set`` line gives upstream — for the defaults, the seed's v1.9-era command and a
current-era command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gpu_operator.operator.cluster import node_facts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, deprecations, parse_spec

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
DATA = ROOT / "tests" / "data" / "operator"

pytestmark = pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)")

SEED = [
    "--set", "operator.defaultRuntime=containerd",
    "--set", "mig.strategy=mixed",
    "--set", "driver.repository=homelab.net/nvcr.io/nvidia",
    "--set", "driver.version=450.156.00",
    "--set", "operator.initContainer.version=11.4.2-base-ubi8",
    "--set", "validator.version=v1.9.0",
    "--set", "nfd.enabled=true",
    "--set", "validator.plugin.env[0].name=WITH_WORKLOAD",
    "--set-string", "validator.plugin.env[0].value=false",
]  # fmt: skip
CURRENT = [
    "--set", "driver.version=580.126.20",
    "--set", "driver.manager.version=v0.12.0",
    "--set", "toolkit.version=v1.20.0",
    "--set", "driver.kernelModuleType=open",
    "--set", "cdi.enabled=false",
    "--set", "migManager.config.name=custom-mig-config",
    "--set", "migManager.config.default=all-1g.10gb",
    "--set", "driver.upgradePolicy.gpuPodDeletion.timeoutSeconds=600",
    "--set", "nfd.enabled=false",
]  # fmt: skip


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)


def template(*args: str) -> list[dict[str, Any]]:
    result = helm("template", "gpu-operator", str(CHART), "-n", "gpu-operator", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def policy(objects: list[dict[str, Any]]) -> ClusterPolicySpec:
    (cr,) = [o for o in objects if o["kind"] == "ClusterPolicy"]
    assert cr["apiVersion"] == "nvidia.com/v1"
    assert cr["metadata"]["name"] == "cluster-policy"
    return parse_spec(cr["spec"], source="helm template")


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_the_chart_lints_strictly() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "extra", [[], SEED, CURRENT], ids=["defaults", "seed command", "current-era command"]
)
def test_every_rendered_kubernetes_object_is_valid(extra: list[str]) -> None:
    for obj in template(*extra):
        if obj["kind"] != "ClusterPolicy":
            kubernetes_validate.validate(obj, "1.35.0", strict=True)


def test_the_default_install_runs_our_image_everywhere_but_the_driver() -> None:
    objects = template()
    spec = policy(objects)
    (deployment,) = by_kind(objects, "Deployment").values()
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    nodes = yaml.safe_load((DATA / "defaults" / "nodes.yaml").read_text())
    desired = desired_state(spec, [node_facts(n) for n in nodes], environ=env)
    images = {
        c["image"]
        for o in desired.objects()
        if o["kind"] == "DaemonSet"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {
        "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
        "nvcr.io/nvidia/driver:595.91.07-ubuntu22.04",
    }
    assert not spec.dcgm.enabled


def test_the_seed_command_renders_mixed_mig_and_the_mirrored_rocky_driver() -> None:
    spec = policy(template(*SEED))
    assert spec.mig.strategy == "mixed"
    assert (spec.driver.repository, spec.driver.image, spec.driver.version) == (
        "homelab.net/nvcr.io/nvidia", "driver", "450.156.00",
    )  # fmt: skip
    assert deprecations(spec) == ["operator.defaultRuntime", "operator.initContainer"]
    nodes = yaml.safe_load((DATA / "seed" / "nodes.yaml").read_text())
    desired = desired_state(spec, [node_facts(n) for n in nodes])
    driver = by_kind(desired.objects(), "DaemonSet")["nvidia-driver-daemonset"]
    assert driver["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
    )
    assert spec.validator.plugin is not None
    assert spec.validator.plugin.env is not None
    assert spec.validator.plugin.env[0].value == "false"


def test_a_bare_upstream_validator_version_runs_nvidias_validator_at_that_tag_and_says_so() -> None:
    spec = policy(template(*SEED))
    assert (spec.validator.repository, spec.validator.image, spec.validator.version) == (
        "nvcr.io/nvidia/cloud-native", "gpu-operator-validator", "v1.9.0",
    )  # fmt: skip
    notes = helm("install", "x", str(CHART), "--dry-run", "-n", "gpu-operator", *SEED)
    assert (
        "validator.version=v1.9.0: NVIDIA's validator image, "
        "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0"
    ) in notes.stdout


def test_a_current_era_command_pins_nvidias_operand_images_as_upstream_would() -> None:
    spec = policy(template(*CURRENT))
    assert spec.driver.version == "580.126.20"
    assert spec.driver.kernelModuleType == "open"
    assert spec.cdi.enabled is False
    manager = spec.driver.manager
    assert manager is not None
    assert (manager.repository, manager.image, manager.version) == (
        "nvcr.io/nvidia/cloud-native", "k8s-driver-manager", "v0.12.0",
    )  # fmt: skip
    assert (spec.toolkit.repository, spec.toolkit.image, spec.toolkit.version) == (
        "nvcr.io/nvidia/k8s", "container-toolkit", "v1.20.0",
    )  # fmt: skip
    assert spec.migManager.config is not None
    assert (spec.migManager.config.name, spec.migManager.config.default) == (
        "custom-mig-config",
        "all-1g.10gb",
    )
    assert spec.driver.upgradePolicy is not None
    assert spec.driver.upgradePolicy.podDeletion is not None
    assert spec.driver.upgradePolicy.podDeletion.timeoutSeconds == 600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--set", "driver.verison=1"],
            "at '/driver/verison': value must be 'did you mean driver.version?'",
            id="a typo in a key",
        ),
        pytest.param(
            ["--set", "mig.strategy=Mixed"],
            "at '/mig/strategy': value must be one of 'none', 'single', 'mixed'",
            id="a bad enum",
        ),
        pytest.param(
            ["--set", "daemonsets.updateStrategy=Recreate"],
            "at '/daemonsets/updateStrategy'",
            id="a bad update strategy",
        ),
        pytest.param(
            ["--set", "driver.imagePullPolicy=Sometimes"],
            "at '/driver/imagePullPolicy'",
            id="a bad pull policy",
        ),
    ],
)
def test_the_values_schema_rejects_with_a_clear_message(args: list[str], message: str) -> None:
    result = helm("template", "x", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_v1_9_era_keys_are_accepted() -> None:
    objects = template(
        "--set", "psp.enabled=true", "--set", "operator.version=v0.1.0",
        "--set", "migManager.config.name=cm",
        "--set", "toolkit.env[0].name=CONTAINERD_SET_AS_DEFAULT",
        "--set-string", "toolkit.env[0].value=true",
    )  # fmt: skip
    spec = policy(objects)
    assert spec.psp is not None
    assert spec.toolkit.env is not None
    assert spec.toolkit.env[0].value == "true"


def test_nfd_enabled_deploys_our_node_labeller_and_false_does_not() -> None:
    assert "gpu-operator-node-labeler" in by_kind(template(), "DaemonSet")
    assert by_kind(template("--set", "nfd.enabled=false"), "DaemonSet") == {}


def gfd_env(*args: str) -> dict[str, str]:
    return {e.name: e.value for e in policy(template(*args)).gfd.env or ()}


def test_without_nfd_feature_discovery_labels_the_node_itself() -> None:
    assert gfd_env()["GPU_OPERATOR_GFD_NODE_LABELS"] == "true"
    assert gfd_env()["GFD_USE_NODE_FEATURE_API"] == "false"
    assert "GPU_OPERATOR_GFD_NODE_LABELS" not in gfd_env("--set", "nfd.enabled=false")
    assert gfd_env("--set", "nfd.enabled=false")["GFD_SLEEP_INTERVAL"] == "60s"


def test_the_crd_upgrade_hook_runs_before_upgrades_only_when_asked() -> None:
    (job,) = by_kind(template(), "Job").values()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "gpu-operator",
        "crds",
        "--apply",
    ]
    assert by_kind(template("--set", "operator.upgradeCRD=false"), "Job") == {}


def test_rbac_names_every_verb_and_resource() -> None:
    for obj in template():
        for rule in obj.get("rules") or ():
            assert "*" not in rule["verbs"], obj["metadata"]["name"]
            assert "*" not in rule["resources"], obj["metadata"]["name"]
            assert "*" not in rule["apiGroups"], obj["metadata"]["name"]


def test_the_chart_ships_the_generated_crd() -> None:
    from gpu_operator.operator.crd import crd_yaml

    assert (CHART / "crds" / "nvidia.com_clusterpolicies.yaml").read_text() == crd_yaml()
