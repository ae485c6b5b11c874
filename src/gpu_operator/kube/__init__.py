"""Kubernetes glue shared by the operator and every node agent: the one place that builds a
lightkube client and talks to the API (label patches, server-side apply, watches, pods on a node,
Events, retries). No agent talks HTTP itself.

The names below are loaded on first use: an agent that only carries ``KubeSettings``
(``gpu_operator.kube.settings``) imports no lightkube until it talks to the API."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from gpu_operator.lazy import lazy_getattr

if TYPE_CHECKING:
    from gpu_operator.kube.applying import aapply, apply
    from gpu_operator.kube.client import build_async_client, build_client, load_config
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
    from gpu_operator.kube.retry import aretry, is_retryable, kube_error, retry
    from gpu_operator.kube.settings import FIELD_MANAGER, KubeSettings, RetryPolicy
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

_HOMES = {
    "FIELD_MANAGER": "gpu_operator.kube.settings",
    "KubeClient": "gpu_operator.kube.objects",
    "KubeSettings": "gpu_operator.kube.settings",
    "RetryPolicy": "gpu_operator.kube.settings",
    "WatchEvent": "gpu_operator.kube.watching",
    "aapply": "gpu_operator.kube.applying",
    "apatch_node_labels": "gpu_operator.kube.labels",
    "apods_on_node": "gpu_operator.kube.pods",
    "apost_event": "gpu_operator.kube.events",
    "apply": "gpu_operator.kube.applying",
    "apply_config_map": "gpu_operator.kube.objects",
    "aretry": "gpu_operator.kube.retry",
    "awatch": "gpu_operator.kube.watching",
    "awatch_node": "gpu_operator.kube.watching",
    "build_async_client": "gpu_operator.kube.client",
    "build_client": "gpu_operator.kube.client",
    "build_event": "gpu_operator.kube.events",
    "create_from_manifest": "gpu_operator.kube.objects",
    "create_namespaced": "gpu_operator.kube.objects",
    "daemonset_dicts": "gpu_operator.kube.nodeops",
    "delete_pod": "gpu_operator.kube.objects",
    "evict_pod": "gpu_operator.kube.nodeops",
    "get_namespaced": "gpu_operator.kube.objects",
    "get_node": "gpu_operator.kube.objects",
    "get_pod": "gpu_operator.kube.objects",
    "is_retryable": "gpu_operator.kube.retry",
    "kube_error": "gpu_operator.kube.retry",
    "list_nodes": "gpu_operator.kube.objects",
    "load_config": "gpu_operator.kube.client",
    "node_dicts": "gpu_operator.kube.nodeops",
    "owned_by_prefixes": "gpu_operator.kube.labels",
    "patch_node_labels": "gpu_operator.kube.labels",
    "plan_map_patch": "gpu_operator.kube.labels",
    "pod_dicts": "gpu_operator.kube.nodeops",
    "pods_on_node": "gpu_operator.kube.pods",
    "post_event": "gpu_operator.kube.events",
    "relist_events": "gpu_operator.kube.watching",
    "replace_namespaced": "gpu_operator.kube.objects",
    "retry": "gpu_operator.kube.retry",
    "set_unschedulable": "gpu_operator.kube.nodeops",
    "watch": "gpu_operator.kube.watching",
    "watch_node": "gpu_operator.kube.watching",
}


__getattr__ = lazy_getattr(__name__, _HOMES, globals())


class _Package(types.ModuleType):
    """Keeps ``gpu_operator.kube.retry`` the function: the import system binds each submodule
    to its package once loaded, which would let the module ``retry`` shadow it."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "retry" and isinstance(value, types.ModuleType):
            value = value.retry
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
