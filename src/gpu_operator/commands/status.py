"""``gpu-operator status`` (and ``kubectl gpu status``): the cluster as an administrator asks
about it — per GPU node its GPUs, MIG layout and state, the readiness of each operand, and what
blocks (a pod's reason, a failed or pending MIG change, a paused operand, a cordon, a DRA
device taint from the node's ResourceSlices), then the ClusterPolicy's state with the conditions
that are not true. Read-only."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gpu_operator import nfd, views
from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.driver.groups import OWNER_LABEL
from gpu_operator.driver.pools import is_driver_pool
from gpu_operator.errors import GpuOperatorError
from gpu_operator.mig.agent import FAILURE_ANNOTATION
from gpu_operator.names import (
    DEPLOY_LABEL_PREFIX,
    GPU_COUNT_LABEL,
    GPU_PRODUCT_LABEL,
    MIG_CONFIG_LABEL,
    MIG_CONFIG_STATE_LABEL,
)

Obj = Mapping[str, Any]
OPERANDS = (
    "nvidia-driver-daemonset",
    "nvidia-container-toolkit-daemonset",
    "nvidia-operator-validator",
    "nvidia-device-plugin-daemonset",
    "gpu-feature-discovery",
    "nvidia-dcgm-exporter",
    "nvidia-mig-manager",
    "nvidia-dra-driver-gpu-kubelet-plugin",
)


@dataclass
class NodeReport:
    name: str
    gpus: str
    mig_config: str
    mig_state: str
    resources: dict[str, int]
    operands: dict[str, str] = field(default_factory=dict)
    blocking: list[str] = field(default_factory=list)
    nvidia_driver: str = ""
    """The NVIDIADriver CR that drives the node (the operator's owner label), if any."""
    device_taints: list[dict[str, str]] = field(default_factory=list)
    """DRA device taints of the node's ResourceSlices: driver, device, key, value, effect."""


def device_taints(slices: Sequence[Obj]) -> dict[str, list[dict[str, str]]]:
    """Node name → every taint on a device of its ResourceSlices (``resource.k8s.io/v1``
    ``Device.taints``; the DRA driver taints a GPU an XID made unusable), slice order."""
    found: dict[str, list[dict[str, str]]] = {}
    for item in slices:
        spec = item.get("spec") or {}
        node = str(spec.get("nodeName") or "")
        for device in spec.get("devices") or ():
            for taint in device.get("taints") or ():
                found.setdefault(node, []).append(
                    {
                        "driver": str(spec.get("driver", "")),
                        "device": str(device.get("name", "")),
                        "key": str(taint.get("key", "")),
                        "value": str(taint.get("value", "")),
                        "effect": str(taint.get("effect", "")),
                    }
                )
    return found


def taint_line(taint: Mapping[str, str]) -> str:
    """``device gpu-3 (gpu.nvidia.com) tainted gpu.nvidia.com/xid=79:NoSchedule``."""
    value = f"={taint['value']}" if taint["value"] else ""
    return (
        f"device {taint['device']} ({taint['driver']}) tainted "
        f"{taint['key']}{value}:{taint['effect']}"
    )


def node_report(node: Obj, pods: list[Obj]) -> NodeReport:
    """One GPU node's line, from its Node object and the pods bound to it."""
    labels = node["metadata"].get("labels") or {}
    name = node["metadata"]["name"]
    count, product = (
        labels.get(GPU_COUNT_LABEL, "?"),
        labels.get(GPU_PRODUCT_LABEL, ""),
    )
    report = NodeReport(
        name=name,
        gpus=f"{count}× {product}" if product else "not discovered yet",
        mig_config=labels.get(MIG_CONFIG_LABEL, "-"),
        mig_state=labels.get(MIG_CONFIG_STATE_LABEL, "-"),
        resources=views.gpu_resources(node),
        nvidia_driver=labels.get(OWNER_LABEL, ""),
    )
    for pod in pods:
        app = (pod["metadata"].get("labels") or {}).get("app", "")
        if app in OPERANDS or is_driver_pool(app):  # the operator's rule: CR and OS pools too
            report.operands[app] = views.pod_status(pod)
            if not views.settled(pod):
                report.blocking.append(f"pod {pod['metadata']['name']}: {views.pod_status(pod)}")
    for operand in OPERANDS:
        label = f"{DEPLOY_LABEL_PREFIX}{operand_key(operand)}"
        deploy = labels.get(label, "")
        if deploy.startswith("paused"):
            report.blocking.append(f"{operand} is {deploy} ({label})")
    if report.mig_state == "failed":
        reason = (node["metadata"].get("annotations") or {}).get(
            FAILURE_ANNOTATION, "see the nvidia-mig-manager pod's log"
        )
        report.blocking.append(f"MIG config {report.mig_config} failed: {reason}")
    elif report.mig_state == "pending":
        report.blocking.append(f"MIG config {report.mig_config} is being applied")
    if (node.get("spec") or {}).get("unschedulable"):
        report.blocking.append("node is cordoned (spec.unschedulable)")
    return report


def operand_key(operand: str) -> str:
    return {
        "nvidia-driver-daemonset": "driver",
        "nvidia-container-toolkit-daemonset": "container-toolkit",
        "nvidia-operator-validator": "operator-validator",
        "nvidia-device-plugin-daemonset": "device-plugin",
        "gpu-feature-discovery": "gpu-feature-discovery",
        "nvidia-dcgm-exporter": "dcgm-exporter",
        "nvidia-mig-manager": "mig-manager",
        "nvidia-dra-driver-gpu-kubelet-plugin": "dra-driver",
    }[operand]


def cluster_report(
    nodes: Sequence[Obj],
    pods: Sequence[Obj],
    policy: Obj | None,
    slices: Sequence[Obj] | None = None,
) -> tuple[list[NodeReport], str, list[str]]:
    """Every GPU node (``nfd.has_nvidia_gpu``: gpu.present, or NFD's NVIDIA PCI label) and the
    policy; ``slices``: the ResourceSlices (their device taints)."""
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        by_node.setdefault((pod.get("spec") or {}).get("nodeName") or "", []).append(pod)
    reports = [
        node_report(n, by_node.get(n["metadata"]["name"], []))
        for n in sorted(nodes, key=lambda n: n["metadata"]["name"])
        if is_gpu_node(n)
    ]
    taints = device_taints(slices or [])
    for report in reports:
        report.device_taints = taints.get(report.name, [])
        report.blocking += [taint_line(t) for t in report.device_taints]
    if _per_cr(policy):
        for report in reports:
            if not report.nvidia_driver:
                report.blocking.append(
                    "no NVIDIADriver CR drives this node: it gets no driver (give a CR a "
                    f"nodeSelector that matches it, or create a default one; {OWNER_LABEL})"
                )
    state, problems = views.policy_summary(policy)
    return reports, state, problems


def _per_cr(policy: Obj | None) -> bool:
    """Whether the policy has NVIDIADriver CRs drive the driver (``driver.useNvidiaDriverCRD``,
    the driver not disabled)."""
    driver = ((policy or {}).get("spec") or {}).get("driver") or {}
    return bool(driver.get("useNvidiaDriverCRD")) and driver.get("enabled", True) is not False


def is_gpu_node(node: Obj) -> bool:
    return nfd.has_nvidia_gpu(node["metadata"].get("labels") or {})


def render(console: Console, reports: list[NodeReport], state: str, problems: list[str]) -> None:
    columns = ["NODE", "GPUS", "MIG CONFIG", "MIG STATE", "RESOURCES", "OPERANDS"]
    per_cr = any(r.nvidia_driver for r in reports)  # which CR drives each node
    table = Table(*columns, *(["NVIDIADRIVER"] if per_cr else []), box=None)
    for r in reports:
        ready = sum(1 for s in r.operands.values() if s in ("Running", "Completed"))
        table.add_row(
            r.name,
            r.gpus,
            r.mig_config,
            r.mig_state,
            ", ".join(f"{k.removeprefix('nvidia.com/')}: {v}" for k, v in r.resources.items())
            or "-",
            f"{ready}/{len(r.operands)} running",
            *([r.nvidia_driver or "-"] if per_cr else []),
        )
    console.print(table)
    for r in reports:
        for line in r.blocking:
            console.print(f"[yellow]{r.name}[/]: {line}", highlight=False)
    console.print(
        f"ClusterPolicy: {state}" + "".join(f"\n  {p}" for p in problems), highlight=False
    )


def gather(
    kubeconfig: Path | None, server: str | None
) -> tuple[list[Obj], list[Obj], Obj | None, list[Obj]]:
    from gpu_operator.kube import KubeSettings, build_client, node_dicts, pod_dicts
    from gpu_operator.kube.cluster_objects import list_cluster_objects
    from gpu_operator.kube.server_info import get_path, served_versions
    from gpu_operator.operator.controller import ClusterPolicy

    client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig))
    try:
        nodes: list[Obj] = list(node_dicts(client))
        pods: list[Obj] = list(pod_dicts(client))
        policies: list[Obj] = sorted(
            (dict(p) for p in client.list(ClusterPolicy)),
            key=lambda p: str(p["metadata"].get("creationTimestamp", "")),
        )
        slices: list[Obj] = []
        if "v1" in served_versions(get_path(client, "/apis/resource.k8s.io")):
            slices = list(
                list_cluster_objects(
                    client, "resource.k8s.io/v1", "ResourceSlice", "resourceslices"
                )
            )
    finally:
        client.close()
    return nodes, pods, (policies[0] if policies else None), slices


def status_command(
    kubeconfig: str | None = option(KUBECONFIG),
    server: str | None = typer.Option(None, "--server", help="API server URL."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Per GPU node: GPUs, MIG layout and state, operand readiness, and what blocks."""
    reports, state, problems = cluster_report(*gather(kubeconfig_path(kubeconfig), server))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "nodes": [asdict(r) for r in reports],
                    "policy": {"state": state, "problems": problems},
                },
                indent=2,
            )
        )
        return
    render(Console(width=None if sys.stdout.isatty() else 200), reports, state, problems)
    if state != "ready" or any(r.blocking for r in reports):
        raise typer.Exit(1)


def kubectl_gpu() -> None:
    """The ``kubectl-gpu`` console script: ``kubectl gpu status`` as a kubectl plugin."""
    app = typer.Typer(help="GPU operator status as a kubectl plugin.", no_args_is_help=True)
    app.command("status")(status_command)

    @app.callback()
    def _root() -> None:
        """kubectl gpu …"""

    try:
        app()
    except GpuOperatorError as error:
        print(f"kubectl gpu: {error}", file=sys.stderr)
        sys.exit(1)
