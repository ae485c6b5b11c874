"""How pods, nodes and the ClusterPolicy read to a person, as pure functions of API objects:
kubectl's STATUS and READY columns, the GPU resources a node advertises, whether every operand
pod has settled (Running and ready, or Completed), and what still keeps the rest from it.
A leaf: ``gpu-operator status`` and the sandbox's views both read it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]


def pod_status(pod: Obj) -> str:
    """kubectl's STATUS: ``Init:1/4``, ``ImagePullBackOff``, ``CrashLoopBackOff``,
    ``Running``, ``Completed``, ``Pending``…"""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    if phase == "Succeeded":
        return "Completed"
    if phase == "Failed":
        return str(status.get("reason") or "Error")
    inits = status.get("initContainerStatuses") or []
    for index, container in enumerate(inits):
        state = container.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode") == 0:
            continue
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting and waiting not in ("PodInitializing", "ContainerCreating"):
            return f"Init:{waiting}"
        return f"Init:{index}/{len(inits)}"
    for container in status.get("containerStatuses") or []:
        waiting = ((container.get("state") or {}).get("waiting") or {}).get("reason")
        if waiting:
            return str(waiting)
    return str(phase)


def pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    every = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return sum(int(c.get("restartCount", 0)) for c in every)


def settled(pod: Obj) -> bool:
    """Running with every container ready, or Completed."""
    state = pod_status(pod)
    if state == "Completed":
        return True
    ready, total = pod_ready(pod).split("/")
    return state == "Running" and ready == total


def blockers(pods: Iterable[Obj]) -> list[str]:
    """``namespace/name: STATUS`` for each pod not settled yet."""
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']} on "
        f"{(p.get('spec') or {}).get('nodeName') or '-'}: {pod_status(p)}"
        for p in pods
        if not settled(p)
    ]


def gpu_resources(node: Obj) -> dict[str, int]:
    """``nvidia.com/*`` allocatable of a node (zeros left out)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return {
        k: int(v) for k, v in sorted(allocatable.items()) if k.startswith("nvidia.com/") and int(v)
    }


def policy_summary(policy: Obj | None) -> tuple[str, list[str]]:
    """The ClusterPolicy's ``status.state`` and its not-True conditions' messages."""
    if policy is None:
        return "absent", ["no ClusterPolicy"]
    status = policy.get("status") or {}
    problems = [
        f"{c.get('type')}: {c.get('message') or c.get('reason')}"
        for c in status.get("conditions") or []
        if c.get("type") not in ("Ready", "Error", "Reconciling") and c.get("status") != "True"
    ]
    return str(status.get("state") or "unknown"), problems
