"""The emulator as the synchronous lightkube client sees it: CRUD, the 409/404/422 answers,
selectors, patches, status subresources, server-side apply ownership, CRDs, finalizers, GC."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from lightkube import ALL_NS, Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentSpec, DeploymentStatus
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta, OwnerReference
from lightkube.operators import exists, in_, not_in
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace, Node, Pod
from lightkube.types import CascadeType, PatchType

from gpu_operator.sandbox.apiserver import ServerThread
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(20)


def version(obj: ConfigMap | Namespace | Deployment) -> int:
    """The object's resourceVersion as the number the emulator counts."""
    assert obj.metadata is not None
    assert obj.metadata.resourceVersion is not None
    return int(obj.metadata.resourceVersion)


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> ConfigMap:
    return ConfigMap(metadata=ObjectMeta(name=name, labels=labels), data=data)


def pod(name: str, node: str | None = None, labels: dict[str, str] | None = None) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, labels=labels),
        spec=PodSpec(nodeName=node, containers=[Container(name="c", image="busybox")]),
    )


def deployment(name: str, image: str = "nginx:1") -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=DeploymentSpec(
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="web", image=image)]),
            ),
        ),
    )


def status_code(excinfo: pytest.ExceptionInfo[ApiError]) -> tuple[int | None, str | None]:
    return excinfo.value.status.code, excinfo.value.status.reason


def test_create_get_list_replace_delete_round_trip(client: Client) -> None:
    created = client.create(cm("settings", a="1"), namespace="default")
    assert created.metadata.uid
    assert created.metadata.creationTimestamp
    assert version(created) > 0
    got = client.get(ConfigMap, "settings", namespace="default")
    assert got.data == {"a": "1"}
    got.data = {"a": "2"}
    replaced = client.replace(got)
    assert version(replaced) > version(created)
    assert [c.metadata.name for c in client.list(ConfigMap, namespace="default")] == ["settings"]
    client.delete(ConfigMap, "settings", namespace="default")
    with pytest.raises(ApiError) as excinfo:
        client.get(ConfigMap, "settings", namespace="default")
    assert status_code(excinfo) == (404, "NotFound")


def test_resource_version_is_cluster_wide_and_increasing(client: Client) -> None:
    a = client.create(cm("a"), namespace="default")
    b = client.create(Namespace(metadata=ObjectMeta(name="team-b")))
    c = client.create(cm("c"), namespace="team-b")
    versions = [version(o) for o in (a, b, c)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_create_twice_is_409_already_exists(client: Client) -> None:
    client.create(cm("dup"), namespace="default")
    with pytest.raises(ApiError) as excinfo:
        client.create(cm("dup"), namespace="default")
    assert status_code(excinfo) == (409, "AlreadyExists")
    assert 'configmaps "dup" already exists' in excinfo.value.status.message


def test_update_with_stale_resource_version_is_409_conflict(client: Client) -> None:
    first = client.create(cm("cfg", a="1"), namespace="default")
    fresh = client.get(ConfigMap, "cfg", namespace="default")
    fresh.data = {"a": "2"}
    client.replace(fresh)
    first.data = {"a": "3"}
    with pytest.raises(ApiError) as excinfo:
        client.replace(first)
    assert status_code(excinfo) == (409, "Conflict")
    assert client.get(ConfigMap, "cfg", namespace="default").data == {"a": "2"}


def test_bad_name_is_422_invalid_naming_the_field(client: Client) -> None:
    with pytest.raises(ApiError) as excinfo:
        client.create(cm("Not_A_Name"), namespace="default")
    assert status_code(excinfo) == (422, "Invalid")
    assert "metadata.name" in excinfo.value.status.message


def test_pod_without_containers_is_422(client: Client) -> None:
    with pytest.raises(ApiError) as excinfo:
        client.create(Pod(metadata=ObjectMeta(name="p"), spec=PodSpec(containers=[])))
    assert status_code(excinfo) == (422, "Invalid")
    assert "spec.containers" in excinfo.value.status.message


def test_create_in_missing_namespace_is_404(client: Client) -> None:
    with pytest.raises(ApiError) as excinfo:
        client.create(cm("x"), namespace="nowhere")
    assert status_code(excinfo) == (404, "NotFound")


def test_generate_name_gets_a_unique_suffix(client: Client) -> None:
    names = {
        client.create(
            ConfigMap(metadata=ObjectMeta(generateName="gen-")), namespace="default"
        ).metadata.name
        for _ in range(3)
    }
    assert len(names) == 3
    assert all(n.startswith("gen-") and len(str(n)) == 9 for n in names)


def test_label_selectors_equality_and_set_based(client: Client) -> None:
    client.create(cm("a", {"tier": "gpu", "zone": "x"}), namespace="default")
    client.create(cm("b", {"tier": "cpu", "zone": "y"}), namespace="default")
    client.create(cm("c", {"tier": "gpu"}), namespace="default")

    def names(**kw: object) -> list[str]:
        return sorted(o.metadata.name for o in client.list(ConfigMap, namespace="default", **kw))

    assert names(labels={"tier": "gpu"}) == ["a", "c"]
    assert names(labels={"tier": in_(["gpu", "cpu"]), "zone": not_in(["y"])}) == ["a", "c"]
    assert names(labels={"zone": exists()}) == ["a", "b"]
    assert names(labels={"tier": "gpu", "zone": "x"}) == ["a"]


def test_field_selectors_node_name_and_phase(client: Client) -> None:
    client.create(pod("p1", node="gpu-1"), namespace="default")
    client.create(pod("p2", node="gpu-2"), namespace="default")
    client.create(pod("p3"), namespace="default")
    on_one = client.list(Pod, namespace=ALL_NS, fields={"spec.nodeName": "gpu-1"})
    assert [p.metadata.name for p in on_one] == ["p1"]
    pending = client.list(Pod, namespace="default", fields={"status.phase": "Pending"})
    assert len(list(pending)) == 3
    named = client.list(Pod, namespace=ALL_NS, fields={"metadata.name": "p2"})
    assert [p.metadata.name for p in named] == ["p2"]


def test_unsupported_field_selector_is_400_naming_the_field(client: Client) -> None:
    with pytest.raises(ApiError) as excinfo:
        list(client.list(ConfigMap, namespace="default", fields={"data.a": "1"}))
    assert excinfo.value.status.code == 400
    assert "data.a" in excinfo.value.status.message


def test_list_in_chunks_returns_everything_once(client: Client) -> None:
    for n in range(7):
        client.create(cm(f"c{n}"), namespace="default")
    names = [o.metadata.name for o in client.list(ConfigMap, namespace="default", chunk_size=3)]
    assert names == [f"c{n}" for n in range(7)]


def test_merge_json_and_strategic_patches(client: Client) -> None:
    client.create(deployment("web"))
    client.patch(
        Deployment,
        "web",
        {"metadata": {"labels": {"team": "gpu"}}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    client.patch(
        Deployment,
        "web",
        [{"op": "add", "path": "/metadata/annotations", "value": {"note": "json"}}],
        namespace="default",
        patch_type=PatchType.JSON,
    )
    sidecar = {"name": "sidecar", "image": "busybox"}
    patched = client.patch(
        Deployment,
        "web",
        {
            "spec": {
                "template": {"spec": {"containers": [sidecar, {"name": "web", "image": "nginx:2"}]}}
            }
        },
        namespace="default",
        patch_type=PatchType.STRATEGIC,
    )
    containers = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert containers == {"web": "nginx:2", "sidecar": "busybox"}
    assert patched.metadata.labels == {"team": "gpu"}
    assert patched.metadata.annotations == {"note": "json"}


def test_generation_bumps_on_spec_change_only(client: Client) -> None:
    created = client.create(deployment("web"))
    assert created.metadata.generation == 1
    labelled = client.patch(
        Deployment,
        "web",
        {"metadata": {"labels": {"x": "y"}}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert labelled.metadata.generation == 1
    changed = client.patch(
        Deployment,
        "web",
        {"spec": {"replicas": 3}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert changed.metadata.generation == 2


def test_status_subresource_separates_spec_and_status(client: Client) -> None:
    client.create(Node(metadata=ObjectMeta(name="gpu-1")))
    client.patch(
        Node.Status,
        "gpu-1",
        {"status": {"capacity": {"nvidia.com/gpu": "8"}}},
        patch_type=PatchType.MERGE,
    )
    client.patch(
        Node,
        "gpu-1",
        {"status": {"capacity": {"nvidia.com/gpu": "1"}}, "spec": {"unschedulable": True}},
        patch_type=PatchType.MERGE,
    )
    node = client.get(Node, "gpu-1")
    assert node.status.capacity == {"nvidia.com/gpu": "8"}
    assert node.spec.unschedulable is True


def test_noop_update_does_not_bump_the_version(client: Client) -> None:
    created = client.create(cm("same", a="1"), namespace="default")
    again = client.patch(
        ConfigMap, "same", {"data": {"a": "1"}}, namespace="default", patch_type=PatchType.MERGE
    )
    assert again.metadata.resourceVersion == created.metadata.resourceVersion


def test_server_side_apply_records_owners_and_reports_conflicts(client: Client) -> None:
    client.apply(cm("shared", a="1"), namespace="default", field_manager="gpu-operator")
    client.apply(
        ConfigMap(metadata=ObjectMeta(name="shared"), data={"b": "2"}),
        namespace="default",
        field_manager="other",
    )
    live = client.get(ConfigMap, "shared", namespace="default")
    assert live.data == {"a": "1", "b": "2"}
    owners = {m.manager: m.fieldsV1 for m in live.metadata.managedFields}
    assert owners == {"gpu-operator": {"f:data": {"f:a": {}}}, "other": {"f:data": {"f:b": {}}}}
    with pytest.raises(ApiError) as excinfo:
        client.apply(cm("shared", b="3"), namespace="default", field_manager="gpu-operator")
    assert excinfo.value.status.code == 409
    assert 'conflict with "other"' in excinfo.value.status.message
    assert ".data.b" in excinfo.value.status.message
    forced = client.apply(
        cm("shared", a="1", b="3"), namespace="default", field_manager="gpu-operator", force=True
    )
    assert forced.data == {"a": "1", "b": "3"}
    assert {m.manager for m in forced.metadata.managedFields} == {"gpu-operator"}


def test_server_side_apply_removes_fields_the_manager_stopped_applying(client: Client) -> None:
    client.apply(cm("mine", a="1", b="2"), namespace="default", field_manager="gpu-operator")
    after = client.apply(cm("mine", a="1"), namespace="default", field_manager="gpu-operator")
    assert after.data == {"a": "1"}


def test_gc_follows_chains_and_keeps_objects_with_a_living_owner(client: Client) -> None:
    def ref(obj: ConfigMap) -> OwnerReference:
        return OwnerReference(
            apiVersion="v1",
            kind="ConfigMap",
            name=str(obj.metadata.name),
            uid=str(obj.metadata.uid),
        )

    def owned(name: str, *owners: ConfigMap) -> ConfigMap:
        meta = ObjectMeta(name=name, ownerReferences=[ref(o) for o in owners])
        return client.create(ConfigMap(metadata=meta), namespace="default")

    root = client.create(cm("root"), namespace="default")
    other = client.create(cm("other"), namespace="default")
    child = owned("child", root)
    owned("grandchild", child)
    owned("shared", root, other)
    client.delete(ConfigMap, "root", namespace="default")

    def names() -> list[str]:
        return [str(o.metadata.name) for o in client.list(ConfigMap, namespace="default")]

    assert wait_until(lambda: names() == ["other", "shared"]), names()


def test_finalizers_hold_deletion_until_removed(client: Client) -> None:
    held = ConfigMap(metadata=ObjectMeta(name="held", finalizers=["example.com/cleanup"]))
    client.create(held, namespace="default")
    client.delete(ConfigMap, "held", namespace="default")
    marked = client.get(ConfigMap, "held", namespace="default")
    assert marked.metadata.deletionTimestamp is not None
    client.patch(
        ConfigMap,
        "held",
        {"metadata": {"finalizers": None}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    with pytest.raises(ApiError) as excinfo:
        client.get(ConfigMap, "held", namespace="default")
    assert status_code(excinfo) == (404, "NotFound")


def test_owner_deletion_garbage_collects_dependents(client: Client) -> None:
    owner = client.create(cm("owner"), namespace="default")
    ref = OwnerReference(
        apiVersion="v1", kind="ConfigMap", name="owner", uid=str(owner.metadata.uid)
    )
    client.create(
        ConfigMap(metadata=ObjectMeta(name="child", ownerReferences=[ref])), namespace="default"
    )
    client.delete(ConfigMap, "owner", namespace="default")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not list(client.list(ConfigMap, namespace="default")):
            break
        time.sleep(0.01)
    assert list(client.list(ConfigMap, namespace="default")) == []


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "mode": {"type": "string", "enum": ["fast", "safe"]},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_is_served_with_status_and_schema_validation(client: Client) -> None:
    client.create(CustomResourceDefinition.from_dict(WIDGET_CRD))
    crd = client.get(CustomResourceDefinition, "widgets.example.com")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    widget_res = create_namespaced_resource("example.com", "v1", "Widget", "widgets")
    created = client.create(
        widget_res(metadata=ObjectMeta(name="w1"), spec={"size": 2, "unknown": 1}),
        namespace="default",
    )
    assert created.spec == {"size": 2}, "unknown fields are pruned, as with structural schemas"
    client.patch(
        widget_res.Status,
        "w1",
        {"status": {"ready": True}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert client.get(widget_res, "w1", namespace="default")["status"] == {"ready": True}
    with pytest.raises(ApiError) as excinfo:
        client.create(
            widget_res(metadata=ObjectMeta(name="bad"), spec={"size": "big", "mode": "slow"}),
            namespace="default",
        )
    message = excinfo.value.status.message
    assert excinfo.value.status.code == 422
    assert "spec.size" in message
    assert "integer" in message
    assert "spec.mode" in message
    with pytest.raises(ApiError) as excinfo:
        client.create(widget_res(metadata=ObjectMeta(name="bad"), spec={}), namespace="default")
    assert "spec.size: Required value" in excinfo.value.status.message


def test_deleting_a_crd_stops_serving_it(client: Client) -> None:
    cluster_crd = {
        **WIDGET_CRD,
        "metadata": {"name": "gizmos.example.com"},
        "spec": {
            **WIDGET_CRD["spec"],
            "scope": "Cluster",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
        },
    }
    client.create(CustomResourceDefinition.from_dict(cluster_crd))
    gizmo_res = create_global_resource("example.com", "v1", "Gizmo", "gizmos")
    client.create(gizmo_res(metadata=ObjectMeta(name="g"), spec={"size": 1}))
    client.delete(CustomResourceDefinition, "gizmos.example.com")
    with pytest.raises(ApiError) as excinfo:
        list(client.list(gizmo_res))
    assert excinfo.value.status.code == 404


def test_watch_resumes_from_a_resource_version(client: Client, server_thread: ServerThread) -> None:
    first = client.create(cm("w1"), namespace="default")
    client.create(cm("w2"), namespace="default")
    client.delete(ConfigMap, "w1", namespace="default")
    seen = []
    for event_type, obj in client.watch(
        ConfigMap,
        namespace="default",
        resource_version=first.metadata.resourceVersion,
        server_timeout=1,
    ):
        seen.append((event_type, obj.metadata.name))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "w2"), ("DELETED", "w1")]


def test_deletecollection_whole_and_by_label(client: Client, server_thread: ServerThread) -> None:
    client.create(cm("a", {"group": "x"}), namespace="default")
    client.create(cm("b", {"group": "x"}), namespace="default")
    client.create(cm("c", {"group": "y"}), namespace="default")
    url = f"{server_thread.url}/api/v1/namespaces/default/configmaps?labelSelector=group%3Dx"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE")) as response:
        assert response.status == 200
    assert [o.metadata.name for o in client.list(ConfigMap, namespace="default")] == ["c"]
    client.deletecollection(ConfigMap, namespace="default")
    assert list(client.list(ConfigMap, namespace="default")) == []


def test_eviction_deletes_the_pod(client: Client) -> None:
    client.create(pod("victim", node="gpu-1"), namespace="default")
    client.create(
        Pod.Eviction(metadata=ObjectMeta(name="victim", namespace="default")),
        name="victim",
        namespace="default",
    )
    assert list(client.list(Pod, namespace="default")) == []


def test_deleting_a_namespace_deletes_its_objects(client: Client) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="doomed")))
    client.create(cm("inside"), namespace="doomed")
    client.delete(Namespace, "doomed")
    assert wait_until(lambda: not list(client.list(Namespace, fields={"metadata.name": "doomed"})))
    assert list(client.list(ConfigMap, namespace=ALL_NS)) == []


def test_system_namespaces_cannot_be_deleted(client: Client) -> None:
    with pytest.raises(ApiError) as excinfo:
        client.delete(Namespace, "default")
    assert status_code(excinfo) == (403, "Forbidden")


def test_orphan_propagation_keeps_dependents_without_the_owner_reference(client: Client) -> None:
    owner = client.create(cm("owner"), namespace="default")
    ref = OwnerReference(
        apiVersion="v1", kind="ConfigMap", name="owner", uid=str(owner.metadata.uid)
    )
    client.create(
        ConfigMap(metadata=ObjectMeta(name="child", ownerReferences=[ref])), namespace="default"
    )
    client.delete(ConfigMap, "owner", namespace="default", cascade=CascadeType.ORPHAN)
    time.sleep(0.05)
    child = client.get(ConfigMap, "child", namespace="default")
    assert child.metadata.ownerReferences is None


def test_dry_run_create_stores_nothing(client: Client) -> None:
    made = client.create(cm("ghost"), namespace="default", dry_run=True)
    assert made.metadata.name == "ghost"
    assert list(client.list(ConfigMap, namespace="default")) == []


def test_status_update_with_put_keeps_the_spec(client: Client) -> None:
    client.create(deployment("web"))
    live = client.get(Deployment, "web", namespace="default")
    live.spec.replicas = 7
    live.status = DeploymentStatus(replicas=2, readyReplicas=1)
    updated = client.replace(Deployment.Status.from_dict(live.to_dict()))
    assert updated.status.readyReplicas == 1
    stored = client.get(Deployment, "web", namespace="default")
    assert stored.spec.replicas != 7, "the status endpoint ignores spec changes"
    assert stored.status.replicas == 2


def test_reapplying_the_same_config_writes_nothing(client: Client) -> None:
    first = client.apply(deployment("web"), field_manager="gpu-operator")
    again = client.apply(deployment("web"), field_manager="gpu-operator")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion
    changed = client.apply(deployment("web", image="nginx:2"), field_manager="gpu-operator")
    assert version(changed) > version(first)
    assert changed.metadata.generation == 2
