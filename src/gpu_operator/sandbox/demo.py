"""``gpu-operator sandbox demo``: the seed story on a simulated cluster, start to finish. Two
Rocky Linux 8.5 nodes with 8×A100-40GB, the seed's Helm values, both nodes labelled
``nvidia.com/mig.config=all-balanced``; wait (with progress) until every operand pod runs, each
node advertises the balanced MIG layout and the ClusterPolicy is ready; print the result; then
run a pod that asks for one ``nvidia.com/mig-3g.20gb`` and show its device and its metrics."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gpu_operator.errors import GpuOperatorError
from gpu_operator.sandbox import views
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.nodes import parse_nodes
from gpu_operator.sandbox.pods import ALLOCATION_ANNOTATION
from gpu_operator.sandbox.rest import Obj, Rest

NAMESPACE = "gpu-operator"
SEED_VALUES = (
    "operator.defaultRuntime=containerd",
    "mig.strategy=mixed",
    "driver.repository=homelab.net/nvcr.io/nvidia",
    "driver.version=450.156.00",
)
BALANCED = {"nvidia.com/mig-1g.5gb": 16, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-3g.20gb": 8}
WORKLOAD = "cuda-workload"
WORKLOAD_RESOURCE = "nvidia.com/mig-3g.20gb"


class DemoFailed(GpuOperatorError):
    """The story did not reach its result in time; the message says what blocks."""


def story_blockers(rest: Rest, gpu_nodes: list[str], layout: dict[str, int]) -> list[str]:
    """What still keeps the cluster from the seed's result (empty: done)."""
    left = views.blockers(rest.list("pods", NAMESPACE))
    for name in gpu_nodes:
        node = rest.get("nodes", name) or {}
        have = views.gpu_resources(node)
        if any(have.get(k) != v for k, v in layout.items()):
            left.append(f"node {name}: {have or 'no GPU resources yet'}")
    state, problems = views.policy_summary(
        rest.get("nvidia.com/v1/clusterpolicies", "cluster-policy")
    )
    if state != "ready":
        left.append(f"ClusterPolicy {state}" + (f": {problems[0]}" if problems else ""))
    return left


def wait_with_progress(
    console: Console, what: str, check: Callable[[], list[str]], timeout_s: float
) -> float:
    """Poll ``check`` until it returns nothing; a status line shows the first blocker."""
    start = time.monotonic()
    left = check()
    with console.status(what) as status:
        while left:
            elapsed = time.monotonic() - start
            if elapsed > timeout_s:
                raise DemoFailed(
                    f"{what}: not done after {timeout_s:g}s; still waiting for:\n  "
                    + "\n  ".join(left[:10])
                )
            status.update(f"{what} [{elapsed:4.1f}s] {len(left)} left — {left[0]}")
            time.sleep(0.25)
            left = check()
    return time.monotonic() - start


def pod_table(rest: Rest) -> Table:
    table = Table("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE", box=None)
    pods = sorted(
        rest.list("pods"), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])
    )
    for pod in pods:
        table.add_row(
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            views.pod_ready(pod),
            views.pod_status(pod),
            str(views.restarts(pod)),
            pod["spec"].get("nodeName", ""),
        )
    return table


def scrape(rest: Rest, node: str) -> str:
    """The exporter's ``/metrics`` on ``node`` (its pod's address)."""
    pods = rest.list(
        "pods", NAMESPACE, labels="app=nvidia-dcgm-exporter", fields=f"spec.nodeName={node}"
    )
    if not pods or not pods[0].get("status", {}).get("podIP"):
        return ""
    url = f"http://{pods[0]['status']['podIP']}:9400/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def workload_pod(name: str = WORKLOAD, resource: str = WORKLOAD_RESOURCE) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "cuda",
                    "image": "nvcr.io/nvidia/cuda:12.4.1-base-ubi8",
                    "command": ["sleep", "infinity"],
                    "resources": {"limits": {resource: 1}},
                }
            ],
        },
    }


def run_demo(console: Console, base_dir: Path, *, timeout_s: float = 150.0) -> float:
    """The seed story; the seconds it took. Raises ``DemoFailed`` naming what blocks."""
    start = time.monotonic()
    specs = parse_nodes("dgx-a100:2", "rocky:8.5")
    names = [s.name for s in specs]
    console.print(
        f"[bold]Simulated cluster:[/] {len(specs)} × Rocky Linux 8.5 nodes with "
        f"{specs[0].gpus}× {specs[0].gpu_model} ({', '.join(names)})"
    )
    with Sandbox(specs, base_dir, driver_delay_s=2.0) as sandbox:
        rest = Rest(sandbox.server.url)
        console.print(f"kubeconfig: {sandbox.kubeconfig}")
        console.print(
            "helm install gpu-operator deployments/gpu-operator --set "
            + " --set ".join(SEED_VALUES)
        )
        sandbox.install(SEED_VALUES)
        for name in names:
            rest.patch(
                "nodes", name, {"metadata": {"labels": {"nvidia.com/mig.config": "all-balanced"}}}
            )
        console.print("kubectl label nodes --all nvidia.com/mig.config=all-balanced")
        took = wait_with_progress(
            console,
            "rolling out",
            lambda: story_blockers(rest, names, BALANCED),
            timeout_s,
        )
        console.print(f"\n[bold green]Ready[/] after {took:.1f}s\n")
        console.print(pod_table(rest))
        console.print("\n[bold]GPU resources[/] (allocatable)")
        for name in names:
            resources = views.gpu_resources(rest.get("nodes", name) or {})
            console.print(f"  {name}: " + ", ".join(f"{k}: {v}" for k, v in resources.items()))
        state, problems = views.policy_summary(
            rest.get("nvidia.com/v1/clusterpolicies", "cluster-policy")
        )
        console.print(
            f"\n[bold]ClusterPolicy[/] cluster-policy: state={state}"
            + "".join(f"\n  {p}" for p in problems)
        )
        body = scrape(rest, names[0])
        sample = [
            line
            for line in body.splitlines()
            if line.startswith(("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP"))
        ]
        console.print(f"\n[bold]Metrics[/] from the exporter on {names[0]} (sample):")
        console.print(
            "\n".join(f"  {line}" for line in sample[:4]) or "  (none)",
            highlight=False,
            soft_wrap=True,
        )
        run_workload(console, rest, timeout_s=max(20.0, timeout_s - (time.monotonic() - start)))
    return time.monotonic() - start


def run_workload(console: Console, rest: Rest, *, timeout_s: float) -> None:
    console.print(f"\n[bold]A GPU pod[/]: {WORKLOAD} asks for 1 {WORKLOAD_RESOURCE}")
    rest.create("pods", workload_pod(), "default")

    def running() -> list[str]:
        pod = rest.get("pods", WORKLOAD, "default") or {}
        return (
            []
            if views.pod_status(pod) == "Running"
            else [f"pod {WORKLOAD}: {views.pod_status(pod)}"]
        )

    wait_with_progress(console, "starting the GPU pod", running, timeout_s)
    pod = rest.get("pods", WORKLOAD, "default") or {}
    node = pod["spec"]["nodeName"]
    allocated = pod["metadata"].get("annotations", {}).get(ALLOCATION_ANNOTATION, "")
    console.print(f"  scheduled on {node}; allocated: {allocated}", highlight=False, soft_wrap=True)
    series: list[str] = []

    def attributed() -> list[str]:
        series[:] = [
            line for line in scrape(rest, node).splitlines() if f'pod="{WORKLOAD}"' in line
        ]
        return [] if series else [f"the exporter on {node} has no series for pod {WORKLOAD} yet"]

    wait_with_progress(console, "waiting for its metrics", attributed, timeout_s)
    console.print(f"  its series in the exporter ({len(series)}):")
    console.print("\n".join(f"  {line}" for line in series[:5]), highlight=False, soft_wrap=True)
