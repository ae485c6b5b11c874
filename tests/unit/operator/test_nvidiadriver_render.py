"""NVIDIADriver CRs through the pure reconcile core: one driver DaemonSet per CR and OS pool with
the CR's image and the Rocky/RHEL tag rule, the ClusterPolicy's own driver not rendered, each
GPU node labelled with the one CR that drives it, two CRs selecting one node resolved oldest
first with a condition naming both and the nodes, the default CR as the fallback, per-CR status,
a CR that cannot render keeping what it has, zero writes at steady state, and per-CR upgrades."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.driver.groups import OWNER_LABEL, plan_groups
from gpu_operator.driver.upgrade import SetState
from gpu_operator.driver.upgrade_model import DriverPod, NodeView, UpgradePolicy
from gpu_operator.names import GPU_PRESENT_LABEL
from gpu_operator.nfd import OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.labeling import apply_patch
from gpu_operator.operator.reconcile import Observed, Plan, plan
from gpu_operator.operator.status import obj_key
from helpers.gpu_nodes import gpu_node as node

POLICY_SPEC = {"driver": {"useNvidiaDriverCRD": True}}
ROCKY = {OS_ID_LABEL: "rocky"}
UBUNTU = {OS_ID_LABEL: "ubuntu"}


def policy(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "cluster-policy", "uid": "uid-p", "creationTimestamp": "t0"},
        "spec": POLICY_SPEC if spec is None else spec,
    }


def cr(name: str, created: str, **spec: Any) -> dict[str, Any]:
    body = {"default": False, "driverType": "gpu", "image": "driver"}
    body.update({"repository": "nvcr.io/nvidia", "version": "570.148.08"})
    body.update(spec)
    meta = {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, "generation": 1}
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "NVIDIADriver",
        "metadata": meta,
        "spec": body,
    }


def run(
    crs: list[dict[str, Any]],
    nodes: list[NodeFacts],
    owned: dict[Any, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> Plan:
    return plan(
        Observed(policies=[policy(spec)], nodes=nodes, owned=owned or {}, nvidia_drivers=crs)
    )


def driver_daemonsets(result: Plan) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in result.applies
        if o["kind"] == "DaemonSet" and "driver" in o["metadata"]["name"]
    }


def image(ds: dict[str, Any]) -> str:
    return str(ds["spec"]["template"]["spec"]["containers"][0]["image"])


def owners(result: Plan) -> dict[str, str | None]:
    return {n: p.labels.get(OWNER_LABEL) for n, p in result.node_patches.items()}


NODES = [
    node("rocky-1", "rocky", "8.10"),
    node("rocky-2", "rocky", "8.5"),
    node("ubu-1", "ubuntu", "22.04"),
]


def test_a_rocky_and_an_ubuntu_cr_give_two_daemonsets_with_their_tags() -> None:
    result = run(
        [
            cr("rocky", "t1", nodeSelector=ROCKY),
            cr("ubuntu", "t2", nodeSelector=UBUNTU, version="580.95.05"),
        ],
        NODES,
    )
    daemonsets = driver_daemonsets(result)
    assert {name: image(ds) for name, ds in daemonsets.items()} == {
        "nvidia-gpu-driver-rocky-rocky8": "nvcr.io/nvidia/driver:570.148.08-rocky8",
        "nvidia-gpu-driver-ubuntu-ubuntu22.04": "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04",
    }
    assert owners(result) == {"rocky-1": "rocky", "rocky-2": "rocky", "ubu-1": "ubuntu"}
    rocky = daemonsets["nvidia-gpu-driver-rocky-rocky8"]["spec"]["template"]
    assert rocky["spec"]["nodeSelector"][OWNER_LABEL] == "rocky"
    assert rocky["spec"]["nodeSelector"]["nvidia.com/gpu.deploy.driver"] == "true"
    assert rocky["metadata"]["labels"]["app.kubernetes.io/component"] == "nvidia-driver"
    refs = daemonsets["nvidia-gpu-driver-rocky-rocky8"]["metadata"]["ownerReferences"]
    assert [(r["kind"], r.get("controller", False)) for r in refs] == [
        ("ClusterPolicy", True),
        ("NVIDIADriver", False),
    ]
    assert "nvidia-driver-daemonset" not in {obj_key(o)[2] for o in result.applies}


@pytest.mark.parametrize(
    ("spec", "nodes", "expected"),
    [
        pytest.param(
            {"usePrecompiled": True, "version": "570"},
            [node("u", "ubuntu", "22.04", "5.15.0-69-generic")],
            {
                "nvidia-gpu-driver-a-5.15.0-69-generic-ubuntu22.04": (
                    "nvcr.io/nvidia/driver:570-5.15.0-69-generic-ubuntu22.04"
                )
            },
            id="precompiled: branch, kernel and OS",
        ),
        pytest.param(
            {"repository": None, "image": "nvcr.io/nvidia/driver"},
            [node("r", "rhel", "9.4")],
            {"nvidia-gpu-driver-a-rhel9": "nvcr.io/nvidia/driver:570.148.08-rhel9"},
            id="upstream's default image path and RHEL's major-only tag",
        ),
        pytest.param(
            {"version": "sha256:" + "a" * 64},
            [node("r", "rocky", "9.4")],
            {"nvidia-gpu-driver-a-rocky9": "nvcr.io/nvidia/driver@sha256:" + "a" * 64},
            id="a digest is used unchanged",
        ),
        pytest.param(
            {"driverType": "vgpu"},
            [node("r", "rocky", "8.5"), node("u", "ubuntu", "24.04")],
            {
                "nvidia-vgpu-driver-a-rocky8": "nvcr.io/nvidia/driver:570.148.08-rocky8",
                "nvidia-vgpu-driver-a-ubuntu24.04": "nvcr.io/nvidia/driver:570.148.08-ubuntu24.04",
            },
            id="one CR over two OSes: a pool each",
        ),
    ],
)
def test_the_tag_rules_apply_per_cr(
    spec: dict[str, Any], nodes: list[NodeFacts], expected: dict[str, str]
) -> None:
    result = run([cr("a", "t1", **spec)], nodes)
    assert {name: image(ds) for name, ds in driver_daemonsets(result).items()} == expected


def test_the_clusterpolicys_os_aliases_apply_to_cr_drivers() -> None:
    spec = {"driver": {"useNvidiaDriverCRD": True, "osAliases": {"almalinux": "rhel"}}}
    result = run([cr("a", "t1")], [node("alma", "almalinux", "9.4")], spec=spec)
    assert {image(ds) for ds in driver_daemonsets(result).values()} == {
        "nvcr.io/nvidia/driver:570.148.08-rhel9"
    }


def test_two_crs_selecting_one_node_give_it_one_driver_and_a_condition_naming_both() -> None:
    result = run(
        [cr("all-gpus", "t1"), cr("rocky", "t2", nodeSelector=ROCKY)],
        NODES,
    )
    assert set(owners(result).values()) == {"all-gpus"}
    assert set(driver_daemonsets(result)) == {
        "nvidia-gpu-driver-all-gpus-rocky8",
        "nvidia-gpu-driver-all-gpus-ubuntu22.04",
    }
    loser = result.driver_statuses["rocky"]
    assert loser["state"] == "notReady"
    ready, error = loser["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "Error")
    assert (error["type"], error["status"], error["reason"]) == (
        "Error",
        "True",
        "ConflictingNodeSelector",
    )
    assert "NVIDIADriver rocky selects node(s) rocky-1, rocky-2" in error["message"]
    assert "NVIDIADriver all-gpus (older)" in error["message"]
    assert result.driver_statuses["all-gpus"]["state"] == "notReady"  # not rolled out yet
    assert result.driver_statuses["all-gpus"]["conditions"][1]["reason"] == "DriverNotReady"


def test_the_younger_cr_keeps_the_nodes_nobody_else_selects() -> None:
    result = run(
        [
            cr("rocky8-5", "t1", nodeSelector={OS_VERSION_LABEL: "8.5"}),
            cr("rocky", "t2", nodeSelector=ROCKY),
        ],
        NODES,
    )
    assert {n: o for n, o in owners(result).items() if o} == {
        "rocky-1": "rocky",
        "rocky-2": "rocky8-5",
    }
    error = result.driver_statuses["rocky"]["conditions"][1]
    assert "node(s) rocky-2 that NVIDIADriver rocky8-5" in error["message"]


def test_the_default_cr_drives_only_the_nodes_no_other_cr_selects() -> None:
    result = run([cr("fallback", "t1", default=True), cr("rocky", "t2", nodeSelector=ROCKY)], NODES)
    assert owners(result) == {"rocky-1": "rocky", "rocky-2": "rocky", "ubu-1": "fallback"}
    assert "ConflictingNodeSelector" not in str(result.driver_statuses)


def test_a_second_default_cr_conflicts_with_the_first() -> None:
    result = run([cr("one", "t1", default=True), cr("two", "t2", default=True)], NODES[:1])
    assert owners(result) == {"rocky-1": "one"}
    assert result.driver_statuses["two"]["conditions"][1]["reason"] == "ConflictingNodeSelector"


def test_a_required_node_affinity_narrows_what_a_cr_selects() -> None:
    affinity = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": OS_VERSION_LABEL, "operator": "NotIn", "values": ["8.5"]}
                    ]
                }
            ]
        }
    }
    result = run([cr("a", "t1", nodeAffinity=affinity)], NODES)
    assert {n for n, o in owners(result).items() if o == "a"} == {"rocky-1", "ubu-1"}


def settle(
    result: Plan, nodes: list[NodeFacts], crs: list[dict[str, Any]]
) -> tuple[list[NodeFacts], dict[Any, Any], list[dict[str, Any]]]:
    """The cluster after ``result`` was carried out and every DaemonSet rolled out."""
    labelled = [
        NodeFacts(
            n.name,
            apply_patch(n.labels, result.node_patches[n.name].labels)
            if n.name in result.node_patches
            else n.labels,
            {},
        )
        for n in nodes
    ]
    done = {
        "desiredNumberScheduled": 1,
        "numberAvailable": 1,
        "updatedNumberScheduled": 1,
        "numberUnavailable": 0,
    }
    owned = {obj_key(o): {**o, "status": done} for o in result.applies}
    updated = [{**c, "status": result.driver_statuses.get(c["metadata"]["name"])} for c in crs]
    return labelled, owned, updated


def test_a_settled_cluster_makes_no_write_and_each_cr_is_ready() -> None:
    crs = [cr("rocky", "t1", nodeSelector=ROCKY), cr("ubuntu", "t2", nodeSelector=UBUNTU)]
    first = run(crs, NODES)
    nodes, owned, crs = settle(first, NODES, crs)
    second = run(crs, nodes, owned)
    assert (second.applies, second.deletes, dict(second.node_patches)) == ([], [], {})
    assert {n: s["state"] for n, s in second.driver_statuses.items()} == {
        "rocky": "ready",
        "ubuntu": "ready",
    }
    ready = second.driver_statuses["rocky"]["conditions"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "True",
        "Reconciled",
        "driver ready on 2 node(s)",
    )
    crs = [{**c, "status": second.driver_statuses[c["metadata"]["name"]]} for c in crs]
    third = plan(
        Observed(
            policies=[{**policy(), "status": second.statuses.get("cluster-policy")}],
            nodes=nodes,
            owned=owned,
            nvidia_drivers=crs,
        )
    )
    assert third.driver_statuses == {}
    assert third.applies == []


def test_a_cr_that_cannot_render_keeps_its_daemonsets_and_says_why() -> None:
    crs = [cr("rocky", "t1", nodeSelector=ROCKY)]
    first = run(crs, NODES)
    nodes, owned, crs = settle(first, NODES, crs)
    broken = [cr("rocky", "t1", nodeSelector=ROCKY, version=None)]
    second = run(broken, nodes, owned)
    assert second.deletes == []
    status = second.driver_statuses["rocky"]
    assert status["state"] == "notReady"
    assert status["conditions"][1]["reason"] == "ReconcileFailed"
    assert "NVIDIADriver rocky: spec.version: required" in status["conditions"][1]["message"]


def test_turning_the_crd_off_removes_the_owner_labels_and_the_cr_daemonsets() -> None:
    crs = [cr("rocky", "t1", nodeSelector=ROCKY)]
    first = run(crs, NODES)
    nodes, owned, crs = settle(first, NODES, crs)
    off = run(crs, nodes, owned, spec={})
    assert {n: p.labels.get(OWNER_LABEL, "kept") for n, p in off.node_patches.items()} == {
        "rocky-1": None,
        "rocky-2": None,
    }
    assert ("DaemonSet", "gpu-operator", "nvidia-gpu-driver-rocky-rocky8") in off.deletes
    assert {"nvidia-driver-daemonset-rocky8", "nvidia-driver-daemonset-ubuntu22.04"} <= set(
        driver_daemonsets(off)
    )
    assert off.driver_statuses["rocky"]["state"] == "disabled"


def view(name: str, owner: str, current: bool) -> NodeView:
    return NodeView(
        name=name,
        labels={
            OWNER_LABEL: owner,
            GPU_PRESENT_LABEL: "true",
            "nvidia.com/gpu-driver-upgrade-state": "upgrade-done",
        },
        driver=DriverPod("gpu-operator", f"driver-{name}", current=current, ready=True),
        validator_ready=True,
    )


def test_a_crs_version_change_walks_only_that_crs_nodes_through_the_upgrade() -> None:
    # CR "a" changed its version: its DaemonSet's template moved on, its pods did not.
    nodes = [view("a-1", "a", False), view("a-2", "a", False), view("b-1", "b", True)]
    policies = {"a": UpgradePolicy(max_parallel=0, max_unavailable="100%"), "b": UpgradePolicy()}
    step = plan_groups(nodes, policies, now=0.0)
    moved = {a.node: a.state for a in step.actions if isinstance(a, SetState)}
    assert moved == {"a-1": "upgrade-required", "a-2": "upgrade-required"}
    # Each CR's limits count its own nodes: with "a" at maxParallelUpgrades 1, one a-node starts
    # while b's would start too.
    nodes = [
        NodeView(
            **{
                **n.__dict__,
                "labels": {**n.labels, "nvidia.com/gpu-driver-upgrade-state": "upgrade-required"},
            }
        )
        for n in nodes
    ]
    step = plan_groups(nodes, {"a": UpgradePolicy(), "b": UpgradePolicy()}, now=0.0)
    started = sorted(
        a.node for a in step.actions if isinstance(a, SetState) and a.state == "cordon-required"
    )
    assert started == ["a-1", "b-1"]


def pod_spec(spec: dict[str, Any], policy_spec: dict[str, Any] | None = None) -> dict[str, Any]:
    result = run([cr("a", "t1", **spec)], [node("r", "rocky", "8.5")], spec=policy_spec)
    (ds,) = driver_daemonsets(result).values()
    template: dict[str, Any] = ds["spec"]["template"]
    return template


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_the_crs_own_settings_reach_its_daemonset() -> None:
    template = pod_spec(
        {
            "env": [{"name": "EXTRA", "value": "1"}],
            "args": ["init", "--debug"],
            "resources": {"limits": {"memory": "2Gi"}},
            "imagePullPolicy": "Always",
            "imagePullSecrets": ["regcred"],
            "repoConfig": {"name": "repos"},
            "certConfig": {"name": "certs"},
            "licensingConfig": {"secretName": "lic", "nlsEnabled": True},
            "kernelModuleConfig": {"name": "kmod"},
            "secretEnv": "driver-secrets",
            "kernelModuleType": "open",
            "rdma": {"enabled": True, "useHostMofed": True},
            "gds": {"enabled": True},
            "hostNetwork": True,
            "labels": {"team": "ml"},
            "annotations": {"note": "x"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "priorityClassName": "gpu-critical",
            "podSecurityContext": {"runAsUser": 0},
            "manager": {"env": [{"name": "ENABLE_AUTO_DRAIN", "value": "true"}]},
            "startupProbe": {"periodSeconds": 5, "failureThreshold": 3},
        }
    )
    spec = template["spec"]
    main = spec["containers"][0]
    env = env_of(main)
    assert env["EXTRA"] == "1"
    assert (env["KERNEL_MODULE_TYPE"], env["GPU_DIRECT_RDMA_ENABLED"]) == ("open", "true")
    assert (env["USE_HOST_MOFED"], env["GDS_ENABLED"], env["GDRCOPY_ENABLED"]) == (
        "true",
        "true",
        "false",
    )
    assert main["args"] == ["init", "--debug"]
    assert main["resources"] == {"limits": {"memory": "2Gi"}}
    assert main["imagePullPolicy"] == "Always"
    assert main["envFrom"] == [{"secretRef": {"name": "driver-secrets"}}]
    assert (main["startupProbe"]["periodSeconds"], main["startupProbe"]["failureThreshold"]) == (
        5,
        3,
    )
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts["repo-config"] == "/etc/yum.repos.d"  # Rocky: yum-style paths
    assert mounts["cert-config"] == "/etc/pki/ca-trust/extracted/pem"
    assert mounts["kernel-module-config"] == "/drivers"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["licensing-config"]["secret"]["secretName"] == "lic"
    assert {"name": "regcred"} in spec["imagePullSecrets"]
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "gpu-critical"
    assert spec["securityContext"] == {"runAsUser": 0}
    assert {"key": "dedicated", "operator": "Exists"} in spec["tolerations"]
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["annotations"] == {"note": "x"}
    manager = spec["initContainers"][0]
    assert env_of(manager)["ENABLE_AUTO_DRAIN"] == "true"


def test_what_the_cr_leaves_out_comes_from_the_clusterpolicy() -> None:
    policy_spec = {
        "driver": {"useNvidiaDriverCRD": True},
        "daemonsets": {"labels": {"site": "a"}, "priorityClassName": "site-critical"},
    }
    template = pod_spec({"labels": {"team": "ml"}}, policy_spec)
    assert template["metadata"]["labels"]["site"] == "a"
    assert template["metadata"]["labels"]["team"] == "ml"
    # Without the CR's own, the driver pod is system-node-critical, as the ClusterPolicy's.
    assert template["spec"]["priorityClassName"] == "system-node-critical"


def test_a_cr_that_cannot_be_parsed_keeps_the_nodes_it_drives() -> None:
    crs = [cr("rocky", "t1", nodeSelector=ROCKY), cr("ubuntu", "t2", nodeSelector=UBUNTU)]
    first = run(crs, NODES)
    nodes, owned, crs = settle(first, NODES, crs)
    crs[0]["spec"]["kernelModuleType"] = "closed"  # past an API server without our schema
    second = run(crs, nodes, owned)
    assert dict(second.node_patches) == {}, "no owner label moves"
    assert second.deletes == []
    error = second.driver_statuses["rocky"]["conditions"][1]
    assert (error["reason"], second.driver_statuses["rocky"]["state"]) == (
        "ReconcileFailed",
        "notReady",
    )
    assert "spec.kernelModuleType" in error["message"]
    assert second.driver_statuses["ubuntu"]["state"] == "ready"  # the other CR goes on
