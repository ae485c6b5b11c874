"""The chart's ``draDriver`` section with the real ``helm`` and ``kubectl``: off by default (no
policy field, no service account), ``--set draDriver.enabled=true --set devicePlugin.enabled=false``
puts NVIDIA's draDriver keys into ``spec.draDriver`` and grants the plugin's service account what
k8s-dra-driver-gpu's chart grants its kubelet plugin; the operator's rendering of that release
is valid for Kubernetes 1.35/1.37 and ``kubectl`` applies it to the emulator; typos and a
half-set image fail ``helm`` with one line."""

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
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, parse_spec
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.kubectl import kubectl_runner

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)")
DRA = ["--set", "draDriver.enabled=true", "--set", "devicePlugin.enabled=false"]
SA = "nvidia-dra-driver-gpu"
DS = "nvidia-dra-driver-gpu-kubelet-plugin"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run(
        [HELM, "template", "gpu-operator", str(CHART), "-n", "gpu-operator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def template(*args: str) -> list[dict[str, Any]]:
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def spec_of(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], ClusterPolicySpec]:
    (cp,) = [o for o in objects if o["kind"] == "ClusterPolicy"]
    return cp["spec"], parse_spec(cp["spec"], source="helm")


def named(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_off_by_default() -> None:
    objects = template()
    raw, _ = spec_of(objects)
    assert "draDriver" not in raw
    assert SA not in named(objects, "ServiceAccount")


def test_enabled_the_policy_carries_nvidias_keys_and_ours() -> None:
    objects = template(
        *DRA,
        "--set", "draDriver.featureGates.DynamicMIG=true",
        "--set", "draDriver.gpus.kubeletPlugin.env[0].name=LOG_VERBOSITY",
        "--set-string", "draDriver.gpus.kubeletPlugin.env[0].value=6",
        "--set", "draDriver.gpus.kubeletPlugin.resources.limits.memory=256Mi",
        "--set", "draDriver.nodeSelector.pool=dra",
        "--set", "draDriver.args={--cdi-root=/var/run/cdi}",
    )  # fmt: skip
    raw, spec = spec_of(objects)
    assert raw["devicePlugin"]["enabled"] is False
    assert raw["draDriver"] == {
        "enabled": True,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "LOG_VERBOSITY", "value": "6"}],
        "resources": {"limits": {"memory": "256Mi"}},
        "args": ["--cdi-root=/var/run/cdi"],
        "featureGates": {"DynamicMIG": True},
        "nodeSelector": {"pool": "dra"},
    }
    assert spec.draDriver is not None
    assert spec.draDriver.featureGates == {"DynamicMIG": True}


def test_the_plugins_service_account_gets_upstreams_kubelet_plugin_rights() -> None:
    objects = template(*DRA)
    assert SA in named(objects, "ServiceAccount")
    rules = named(objects, "ClusterRole")[SA]["rules"]
    rights = {
        (g, r): set(rule["verbs"])
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert rights[("resource.k8s.io", "resourceclaims")] == {"get", "list", "watch"}
    assert {"create", "update", "delete"} <= rights[("resource.k8s.io", "resourceslices")]
    assert rights[("", "nodes")] == {"get", "list", "watch"}
    binding = named(objects, "ClusterRoleBinding")[SA]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SA, "namespace": "gpu-operator"}
    ]
    operator_rules = named(objects, "ClusterRole")["gpu-operator"]["rules"]
    assert any("deviceclasses" in r["resources"] and "create" in r["verbs"] for r in operator_rules)


def rendered_by_the_operator(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _, spec = spec_of(objects)
    deployment = named(objects, "Deployment")["gpu-operator"]
    environ = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    node = node_facts(
        {
            "metadata": {
                "name": "gpu-1",
                "labels": {"feature.node.kubernetes.io/pci-10de.present": "true"},
            }
        }
    )
    desired = desired_state(spec, [node], namespace="gpu-operator", environ=environ)
    return [o for o in desired.objects() if o["kind"] in ("DaemonSet", "DeviceClass")]


@pytest.mark.parametrize("version", ["1.35.0", "1.37.0"])
def test_what_the_operator_renders_for_the_release_is_valid(version: str) -> None:
    objects = rendered_by_the_operator(template(*DRA))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("DaemonSet", DS),
        ("DeviceClass", "gpu.nvidia.com"),
        ("DeviceClass", "mig.nvidia.com"),
    } <= names
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
    (ds,) = [o for o in objects if o["metadata"]["name"] == DS]
    main = ds["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "ghcr.io/gpu-operator/gpu-operator:v0.1.0"  # the chart's own image


def test_kubectl_applies_the_rendering_to_the_emulator(
    server_thread: ServerThread, tmp_path: Path
) -> None:
    objects = rendered_by_the_operator(template(*DRA))
    server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    kubectl = kubectl_runner(tmp_path / "kubeconfig", tmp_path / "cache")
    kubectl("create", "namespace", "gpu-operator")
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)  # no ClusterPolicy in this cluster
    kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))
    classes = kubectl("get", "deviceclasses", "-o", "name").stdout.split()
    assert classes == [
        "deviceclass.resource.k8s.io/gpu.nvidia.com",
        "deviceclass.resource.k8s.io/mig.nvidia.com",
    ]
    selector = kubectl(
        "get", "daemonset", DS, "-n", "gpu-operator",
        "-o", "jsonpath={.spec.template.spec.nodeSelector}",
    ).stdout  # fmt: skip
    assert selector == '{"nvidia.com/gpu.deploy.dra-driver":"true"}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "draDriver.enabeld=true"], "did you mean draDriver.enabled?"),
        (
            [*DRA, "--set", "draDriver.version=v0.5.0"],
            "draDriver: set repository, image and version together, or image alone",
        ),
        (["--set", "draDriver.featureGates.DynamicMIG=yes"], "featureGates"),
    ],
)
def test_bad_values_fail_helm_with_one_line(args: list[str], message: str) -> None:
    result = helm(*args)
    assert result.returncode != 0
    assert message in result.stderr
