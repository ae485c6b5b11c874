"""``gpu-operator preflight`` (driver part): the driver pools a policy gives for a set of nodes,
the exact image of each, and with ``--check-registry`` whether each tag exists (registry v2 API).
Exits 1 when a tag is missing, so an install script can stop before anything is installed.
With ``driver.useNvidiaDriverCRD`` the pools are each NVIDIADriver CR's (from the ``-f`` stream,
``--nvidia-drivers`` or the cluster), as the operator renders them; a CR that cannot render
(no ``version``) or loses nodes to an older CR is named on stderr, the first failing the run.
It fails too where the operator would refuse the policy's ``draDriver`` (a cluster older than
1.34 or without ``resource.k8s.io/v1``, with ``--from-cluster``; the device plugin on the same
nodes): the operator's own line on stderr."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.commands.images import operator_environ, parse_os, print_notes
from gpu_operator.commands.preflight_cluster import cluster_checks
from gpu_operator.commands.render import (
    DRIVERS_HELP,
    load_documents,
    load_policy_stream,
    nvidia_driver_docs,
)
from gpu_operator.driver.pools import DriverPool
from gpu_operator.driver.preflight import PoolReport, preflight
from gpu_operator.driver.registry import Exists, RegistryAuth, TagCheck, check_tag
from gpu_operator.errors import ConfigError
from gpu_operator.kube import KubeSettings, build_client, pod_dicts
from gpu_operator.kube import node_dicts as list_nodes
from gpu_operator.kube.cluster_objects import list_cluster_objects
from gpu_operator.kube.server_info import get_path, served_versions
from gpu_operator.operator.cluster import NodeFacts, node_facts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.dra_refusals import ApiFacts, parse_version, refusals
from gpu_operator.operator.inventory import pod_images, policy_images, synthetic_nodes
from gpu_operator.operator.labeling import apply_patch, plan_node
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled
from gpu_operator.operator.render.driver import pools as driver_pools


def preflight_command(
    policy: Path = typer.Option(
        ...,
        "-f",
        "--filename",
        help="ClusterPolicy YAML, or a `helm template` stream ('-' = stdin).",
    ),
    nodes: Path | None = typer.Option(
        None, "--nodes", help="Node objects (YAML/JSON, e.g. `kubectl get nodes -o yaml`)."
    ),
    node_os: list[str] = typer.Option(
        [], "--node-os", help="A GPU node OS as ID:VERSION_ID (repeat), instead of --nodes."
    ),
    kernel: list[str] = typer.Option([], "--kernel", help="Node kernel (precompiled drivers)."),
    check_registry: bool = typer.Option(
        False, "--check-registry", help="Ask each registry whether the tag exists."
    ),
    plain_http: list[str] = typer.Option(
        [], "--plain-http", help="A registry (host:port) spoken to over HTTP (repeat)."
    ),
    all_images: bool = typer.Option(
        False,
        "--all-images",
        help="With --check-registry: every image the policy pulls, not only the drivers.",
    ),
    from_cluster: bool = typer.Option(
        False, "--from-cluster", help="Read the nodes from the cluster (--server/--kubeconfig)."
    ),
    server: str | None = typer.Option(None, "--server", help="API server URL."),
    kubeconfig: str | None = option(KUBECONFIG),
    drivers: Path | None = typer.Option(None, "--nvidia-drivers", help=DRIVERS_HELP),
) -> None:
    """Name every driver image the operator will pull, and whether it exists."""
    stream, doc, spec = load_policy_stream(policy)
    crs = nvidia_driver_docs(stream, drivers, policy)
    print_notes(doc)  # what the chart made of image pins, as `images` and the Events say it
    environ = operator_environ(stream if str(policy) != "-" else [])
    cluster_failed = False
    api = ApiFacts()
    if from_cluster:
        from gpu_operator.kube.server_info import get_path, served_versions

        client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig_path(kubeconfig)))
        try:
            objects = list_nodes(client)
            facts = [node_facts(n) for n in objects]
            checks = cluster_checks(objects, pod_dicts(client))
            group = get_path(client, "/apis/resource.k8s.io")
            api = ApiFacts(
                parse_version(get_path(client, "/version") or {}), "v1" in served_versions(group)
            )
            if spec.driver.useNvidiaDriverCRD:
                crs += cluster_nvidia_drivers(client)
        finally:
            client.close()
        for item in checks:
            typer.echo(item.line(), err=True)  # stdout stays the driver image table
        cluster_failed = any(c.level == "fail" for c in checks)
    elif nodes is not None:
        facts = [node_facts(d) for d in load_documents(nodes) if d.get("kind", "Node") == "Node"]
    elif node_os:
        facts = synthetic_nodes([parse_os(t) for t in node_os], kernel)
    else:
        raise ConfigError("preflight: say which nodes: --from-cluster, --nodes FILE or --node-os")
    for line in dra_refusals(spec, facts, api):
        typer.echo(f"fail  {line}", err=True)
        cluster_failed = True
    auth = None
    if os.environ.get("REGISTRY_USERNAME"):
        auth = RegistryAuth(
            os.environ["REGISTRY_USERNAME"], os.environ.get("REGISTRY_PASSWORD", "")
        )
    hosts = frozenset(plain_http)

    def check(image: str) -> TagCheck:
        return check_tag(image, auth=auth, plain_http=hosts)

    per_cr = bool(spec.driver.useNvidiaDriverCRD) and enabled(spec, "driver")
    owners: dict[str, str] = {}
    cr_failed = False
    if per_cr:
        planned, owners, cr_failed = cr_pools(spec, facts, environ, crs)
    else:
        planned = list(driver_pools(spec, facts, environ))
    reports = preflight(planned, check if check_registry else None)
    others_missing = (
        _other_images(spec, facts, reports, check, policy, environ, crs)
        if check_registry and all_images
        else []
    )
    if not reports:
        typer.echo(
            "driver: driver.useNvidiaDriverCRD: no NVIDIADriver CR drives a GPU node (give the "
            "CRs in -f, --nvidia-drivers FILE or --from-cluster)"
            if per_cr
            else "driver: no driver pools (driver disabled, or no GPU nodes with OS labels)"
        )
        if cluster_failed or others_missing or cr_failed:
            raise typer.Exit(1)
        return
    width = max(len(r.pool.name) for r in reports)
    for report in reports:
        pool = report.pool
        line = f"{pool.name:<{width}}  {pool.image}  nodes: {', '.join(pool.nodes)}"
        if pool.name in owners:
            line += f"  NVIDIADriver: {owners[pool.name]}"
        if report.check is not None:
            line += f"  exists: {report.check.exists.value}"
            if report.check.detail:
                line += f" ({report.check.detail})"
        typer.echo(line)
    missing = [r.pool.image for r in reports if r.missing]
    if missing:
        typer.echo(f"missing driver images: {', '.join(missing)}", err=True)
        raise typer.Exit(1)
    if cluster_failed or others_missing or cr_failed:
        raise typer.Exit(1)


def cr_pools(
    spec: ClusterPolicySpec,
    facts: list[NodeFacts],
    environ: Mapping[str, str],
    crs: list[dict[str, Any]],
) -> tuple[list[DriverPool], dict[str, str], bool]:
    """Each NVIDIADriver CR's driver pools as the operator renders them (``desired_state``, the
    reconciler's function): the pools under their DaemonSet names, DaemonSet → CR, and whether
    a CR cannot render. Conflicts and render errors go to stderr."""
    drivers = desired_state(spec, facts, environ=environ, nvidia_drivers=crs).drivers
    if drivers is None:
        return [], {}, False
    for conflicts in drivers.assignment.conflicts.values():
        for conflict in conflicts:
            typer.echo(f"warning: {conflict.message}", err=True)
    for name, error in sorted(drivers.errors.items()):
        typer.echo(f"NVIDIADriver {name}: {error}", err=True)
    planned = [pool for name in sorted(drivers.pools) for pool in drivers.pools[name]]
    owners = {pool.name: name for name, pools in drivers.pools.items() for pool in pools}
    return planned, owners, bool(drivers.errors)


def cluster_nvidia_drivers(client: Any) -> list[dict[str, Any]]:
    """The cluster's NVIDIADriver CRs; none where the CRD is not installed."""
    if "v1alpha1" not in served_versions(get_path(client, "/apis/nvidia.com")):
        return []
    return list_cluster_objects(client, "nvidia.com/v1alpha1", "NVIDIADriver", "nvidiadrivers")


def dra_refusals(spec: ClusterPolicySpec, nodes: list[NodeFacts], api: ApiFacts) -> list[str]:
    """What the operator would refuse of ``draDriver`` (``operator.dra_refusals``), against the
    GPU nodes as the operator will label them."""
    labelled = []
    for node in nodes:
        patch = plan_node(node.labels, node.annotations, spec)
        labels = apply_patch(node.labels, patch.labels)
        labelled.append(NodeFacts(node.name, labels, node.annotations, node.runtime_version))
    return refusals(spec, [n for n in labelled if n.gpu_present], api)


def _other_images(
    spec: ClusterPolicySpec,
    facts: list[NodeFacts],
    reports: list[PoolReport],
    check: Callable[[str], TagCheck],
    source: Path,
    environ: Mapping[str, str],
    crs: list[dict[str, Any]],
) -> list[str]:
    """Every non-driver image the policy's operands pull, asked of its registry once; printed
    to stderr (stdout stays the driver table). Returns the images that do not exist."""
    drivers = {r.pool.image for r in reports}
    users: dict[str, set[str]] = {}
    uses = set(policy_images(spec, facts, environ, nvidia_drivers=crs))
    if str(source) != "-":  # a `helm template` stream also holds the operator's own Deployment
        for doc in load_documents(source):
            if doc.get("kind") in ("Deployment", "DaemonSet", "Job"):
                uses.update(pod_images(doc))
    for use in uses:
        if use.image not in drivers:
            users.setdefault(use.image, set()).add(use.used_by)
    missing = []
    for image in sorted(users):
        result = check(image)
        detail = f" ({result.detail})" if result.detail else ""
        typer.echo(
            f"image {image}  used by: {', '.join(sorted(users[image]))}  "
            f"exists: {result.exists.value}{detail}",
            err=True,
        )
        if result.exists is Exists.NO:
            missing.append(image)
    if missing:
        typer.echo(f"missing images: {', '.join(missing)}", err=True)
    return missing
