"""Kubernetes glue shared by the operator and every node agent: the one place that builds a
lightkube client and talks to the API (label patches, server-side apply, watches, pods on a node,
Events, retries). No agent talks HTTP itself."""

from gpu_operator.kube.applying import aapply, apply
from gpu_operator.kube.client import (
    FIELD_MANAGER,
    KubeSettings,
    build_async_client,
    build_client,
    load_config,
)
from gpu_operator.kube.events import apost_event, build_event, post_event
from gpu_operator.kube.labels import (
    apatch_node_labels,
    owned_by_prefixes,
    patch_node_labels,
    plan_map_patch,
)
from gpu_operator.kube.nodeops import (
    daemonset_dicts,
    evict_pod,
    node_dicts,
    pod_dicts,
    set_unschedulable,
)
from gpu_operator.kube.objects import (
    KubeClient,
    apply_config_map,
    create_from_manifest,
    create_namespaced,
    delete_pod,
    get_namespaced,
    get_node,
    get_pod,
    list_nodes,
    replace_namespaced,
)
from gpu_operator.kube.pods import apods_on_node, pods_on_node
from gpu_operator.kube.retry import RetryPolicy, aretry, is_retryable, kube_error, retry
from gpu_operator.kube.watching import (
    WatchEvent,
    awatch,
    awatch_node,
    relist_events,
    watch,
    watch_node,
)

__all__ = [
    "FIELD_MANAGER",
    "KubeClient",
    "KubeSettings",
    "RetryPolicy",
    "WatchEvent",
    "aapply",
    "apatch_node_labels",
    "apods_on_node",
    "apost_event",
    "apply",
    "apply_config_map",
    "aretry",
    "awatch",
    "awatch_node",
    "build_async_client",
    "build_client",
    "build_event",
    "create_from_manifest",
    "create_namespaced",
    "daemonset_dicts",
    "delete_pod",
    "evict_pod",
    "get_namespaced",
    "get_node",
    "get_pod",
    "is_retryable",
    "kube_error",
    "list_nodes",
    "load_config",
    "node_dicts",
    "owned_by_prefixes",
    "patch_node_labels",
    "plan_map_patch",
    "pod_dicts",
    "pods_on_node",
    "post_event",
    "relist_events",
    "replace_namespaced",
    "retry",
    "set_unschedulable",
    "watch",
    "watch_node",
]
