"""The upstream ClusterPolicy fields we act on change what is rendered, as upstream's operator
renders them: hostNetwork, the v1.9-era container securityContext, the string
``rollingUpdate.maxUnavailable``, driver ``secretEnv``/``livenessProbe``/``licensingConfig``,
dcgm-exporter's pod-label settings, and ``useNvidiaDriverCRD`` (the driver is still deployed)."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import parse_spec

NODE = NodeFacts(
    name="gpu-1",
    labels={
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
        "feature.node.kubernetes.io/kernel-version.full": "5.15.0-1-generic",
    },
    annotations={},
)


def daemonset(spec_data: dict[str, Any], name: str) -> dict[str, Any]:
    spec = parse_spec(spec_data, source="test")
    for obj in desired_state(spec, [NODE], policy_uid="u").objects():
        if obj["kind"] == "DaemonSet" and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no DaemonSet {name}")


def pod(spec_data: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = daemonset(spec_data, name)["spec"]["template"]["spec"]
    return result


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("devicePlugin", "nvidia-device-plugin-daemonset"),
        ("validator", "nvidia-operator-validator"),
        ("gfd", "gpu-feature-discovery"),
        ("dcgmExporter", "nvidia-dcgm-exporter"),
        ("toolkit", "nvidia-container-toolkit-daemonset"),
    ],
)
def test_host_network_puts_the_operand_on_the_node_network(section: str, name: str) -> None:
    on = pod({section: {"hostNetwork": True}}, name)
    assert on["hostNetwork"] is True
    assert on["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "hostNetwork" not in pod({}, name)


def test_a_v1_9_security_context_is_laid_over_the_containers_own() -> None:
    spec = {"toolkit": {"securityContext": {"privileged": True, "seLinuxOptions": {"level": "s0"}}}}
    (main,) = pod(spec, "nvidia-container-toolkit-daemonset")["containers"]
    assert main["securityContext"] == {"privileged": True, "seLinuxOptions": {"level": "s0"}}


@pytest.mark.parametrize(("given", "rendered"), [("1", 1), (2, 2), ("10%", "10%")])
def test_upstreams_string_max_unavailable_renders_as_a_daemonset_takes_it(
    given: object, rendered: object
) -> None:
    ds = daemonset(
        {"daemonsets": {"rollingUpdate": {"maxUnavailable": given}}}, "gpu-feature-discovery"
    )
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == rendered


def driver_container(spec_data: dict[str, Any]) -> dict[str, Any]:
    spec = pod(spec_data, "nvidia-driver-daemonset")
    (main,) = spec["containers"]
    return {**main, "_volumes": spec["volumes"]}


def test_driver_secret_env_liveness_and_readiness_probes() -> None:
    main = driver_container(
        {
            "driver": {
                "secretEnv": "driver-secrets",
                "livenessProbe": {"periodSeconds": 30},
                "readinessProbe": {"failureThreshold": 3},
            }
        }
    )
    assert main["envFrom"] == [{"secretRef": {"name": "driver-secrets"}}]
    assert main["livenessProbe"]["periodSeconds"] == 30
    assert main["livenessProbe"]["exec"] == main["startupProbe"]["exec"]
    assert main["readinessProbe"]["failureThreshold"] == 3
    assert "envFrom" not in driver_container({})


def test_driver_licensing_from_a_secret_mounts_gridd_conf_and_the_nls_token() -> None:
    main = driver_container({"driver": {"licensingConfig": {"secretName": "lic"}}})
    (volume,) = [v for v in main["_volumes"] if v["name"] == "licensing-config"]
    assert volume["secret"] == {
        "secretName": "lic",
        "items": [
            {"key": "gridd.conf", "path": "gridd.conf"},
            {"key": "client_configuration_token.tok", "path": "client_configuration_token.tok"},
        ],
    }
    paths = {m["mountPath"] for m in main["volumeMounts"] if m["name"] == "licensing-config"}
    assert paths == {
        "/drivers/gridd.conf",
        "/drivers/ClientConfigToken/client_configuration_token.tok",
    }
    without_nls = driver_container(
        {"driver": {"licensingConfig": {"configMapName": "lic", "nlsEnabled": False}}}
    )
    (volume,) = [v for v in without_nls["_volumes"] if v["name"] == "licensing-config"]
    assert volume["configMap"]["items"] == [{"key": "gridd.conf", "path": "gridd.conf"}]


def test_use_nvidia_driver_crd_leaves_the_driver_to_nvidiadriver_crs() -> None:
    spec = {"driver": {"useNvidiaDriverCRD": True}}
    with pytest.raises(AssertionError, match="no DaemonSet nvidia-driver-daemonset"):
        daemonset(spec, "nvidia-driver-daemonset")
    assert not any(
        line.startswith("spec.driver.useNvidiaDriverCRD")
        for line in parse_spec(spec, source="t").not_used
    )


def test_dcgm_exporter_pod_labels_pod_uid_and_allowlist_reach_the_exporter() -> None:
    spec = {
        "dcgmExporter": {
            "enablePodLabels": True,
            "enablePodUID": True,
            "podLabelAllowlistRegex": ["^app$", "^team-.*"],
        }
    }
    (main,) = pod(spec, "nvidia-dcgm-exporter")["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES_ENABLE_POD_LABELS"] == "true"
    assert env["DCGM_EXPORTER_KUBERNETES_ENABLE_POD_UID"] == "true"
    assert env["DCGM_EXPORTER_KUBERNETES_POD_LABEL_ALLOWLIST_REGEX"] == "^app$,^team-.*"
    (plain,) = pod({}, "nvidia-dcgm-exporter")["containers"]
    assert not any("POD_LABEL" in e["name"] for e in plain["env"])
