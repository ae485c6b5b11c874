"""The ``cuda`` and ``plugin`` components, through the Kubernetes API: run a validation pod on
this node and wait for ``Succeeded``; poll the node's capacity for GPU resources. The only
validator module that talks to the API (via ``gpu_operator.kube``'s client)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpu_operator.kube import (
    KubeClient,
    create_from_manifest,
    delete_pod,
    get_node,
    get_pod,
    pods_on_node,
)
from gpu_operator.names import GPU_RESOURCE, MIG_RESOURCE_PREFIX
from gpu_operator.validator.running import ValidationFailed
from gpu_operator.validator.workloads import (
    CUDA_APP,
    PLUGIN_APP,
    PodSettings,
    cuda_pod,
    gpu_resource,
    plugin_pod,
)

Sleep = Callable[[float], None]


def run_pod(
    client: KubeClient,
    manifest: dict[str, Any],
    *,
    check: str,
    attempts: int,
    interval_s: float,
    sleep: Sleep = time.sleep,
) -> str:
    """Replace this node's earlier validation pod, create ``manifest``, wait for Succeeded."""
    meta = manifest["metadata"]
    node = manifest["spec"]["nodeName"]
    app = meta["labels"]["app"]
    for old in pods_on_node(client, node, namespace=meta["namespace"], labels={"app": app}):
        if old.metadata is not None and old.metadata.name:
            delete_pod(client, old.metadata.name, meta["namespace"], grace_period=0)
    name = create_from_manifest(client, manifest)["metadata"]["name"]
    phase = None
    for attempt in range(attempts):
        pod = get_pod(client, name, meta["namespace"]) or {}
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded":
            return str(name)
        if attempt + 1 < attempts:
            sleep(interval_s)
    raise ValidationFailed(
        check,
        f"wait for pod {meta['namespace']}/{name} to succeed ({attempts} × {interval_s:g}s)",
        f"last phase {phase or 'unknown'}; see 'kubectl logs -n {meta['namespace']} {name} -c "
        f"{manifest['spec']['initContainers'][0]['name']}'",
    )


def validate_cuda(
    client: KubeClient,
    pod: PodSettings,
    *,
    attempts: int,
    interval_s: float,
    sleep: Sleep = time.sleep,
) -> str:
    name = run_pod(
        client,
        cuda_pod(pod),
        check="cuda",
        attempts=attempts,
        interval_s=interval_s,
        sleep=sleep,
    )
    return f"{CUDA_APP} pod {name} succeeded"


def node_capacity(client: KubeClient, node: str) -> dict[str, str]:
    found = get_node(client, node)
    capacity = found.status.capacity if found.status and found.status.capacity else {}
    return {str(k): str(v) for k, v in capacity.items()}


def validate_plugin(
    client: KubeClient,
    pod: PodSettings,
    *,
    with_workload: bool,
    capacity_attempts: int,
    pod_attempts: int,
    interval_s: float,
    sleep: Sleep = time.sleep,
) -> str:
    resource = None
    for attempt in range(capacity_attempts):
        resource = gpu_resource(node_capacity(client, pod.node))
        if resource is not None:
            break
        if attempt + 1 < capacity_attempts:
            sleep(interval_s)
    if resource is None:
        raise ValidationFailed(
            "plugin",
            f"poll node {pod.node} status.capacity ({capacity_attempts} × {interval_s:g}s)",
            f"no {GPU_RESOURCE}* or {MIG_RESOURCE_PREFIX}* resource: the device plugin has not "
            "registered with the kubelet",
        )
    if not with_workload:
        return f"node {pod.node} advertises {resource}"
    name = run_pod(
        client,
        plugin_pod(pod, resource),
        check="plugin",
        attempts=pod_attempts,
        interval_s=interval_s,
        sleep=sleep,
    )
    return f"{PLUGIN_APP} pod {name} got {resource}"
