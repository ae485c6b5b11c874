"""``gpu-operator preflight`` (driver part): the driver pools a policy gives for a set of nodes,
the exact image of each, and with ``--check-registry`` whether each tag exists (registry v2 API).
Exits 1 when a tag is missing, so an install script can stop before anything is installed."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import typer

from gpu_operator.cli_settings import KUBECONFIG, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.commands.images import operator_environ, parse_os, print_notes
from gpu_operator.commands.preflight_cluster import cluster_checks
from gpu_operator.commands.render import load_documents, load_policy_file
from gpu_operator.driver.preflight import PoolReport, preflight
from gpu_operator.driver.registry import Exists, RegistryAuth, TagCheck, check_tag
from gpu_operator.errors import ConfigError
from gpu_operator.kube import KubeSettings, build_client, pod_dicts
from gpu_operator.kube import node_dicts as list_nodes
from gpu_operator.operator.cluster import NodeFacts, node_facts
from gpu_operator.operator.inventory import pod_images, policy_images, synthetic_nodes
from gpu_operator.operator.policy_v1 import ClusterPolicySpec
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
) -> None:
    """Name every driver image the operator will pull, and whether it exists."""
    doc, spec = load_policy_file(policy)
    print_notes(doc)  # what the chart made of image pins, as `images` and the Events say it
    environ = operator_environ(load_documents(policy) if str(policy) != "-" else [])
    cluster_failed = False
    if from_cluster:
        client = build_client(KubeSettings(server=server, kubeconfig=kubeconfig_path(kubeconfig)))
        try:
            objects = list_nodes(client)
            facts = [node_facts(n) for n in objects]
            checks = cluster_checks(objects, pod_dicts(client))
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
    auth = None
    if os.environ.get("REGISTRY_USERNAME"):
        auth = RegistryAuth(
            os.environ["REGISTRY_USERNAME"], os.environ.get("REGISTRY_PASSWORD", "")
        )
    hosts = frozenset(plain_http)

    def check(image: str) -> TagCheck:
        return check_tag(image, auth=auth, plain_http=hosts)

    reports = preflight(driver_pools(spec, facts, environ), check if check_registry else None)
    others_missing = (
        _other_images(spec, facts, reports, check, policy, environ)
        if check_registry and all_images
        else []
    )
    if not reports:
        typer.echo("driver: no driver pools (driver disabled, or no GPU nodes with OS labels)")
        if cluster_failed or others_missing:
            raise typer.Exit(1)
        return
    width = max(len(r.pool.name) for r in reports)
    for report in reports:
        pool = report.pool
        line = f"{pool.name:<{width}}  {pool.image}  nodes: {', '.join(pool.nodes)}"
        if report.check is not None:
            line += f"  exists: {report.check.exists.value}"
            if report.check.detail:
                line += f" ({report.check.detail})"
        typer.echo(line)
    missing = [r.pool.image for r in reports if r.missing]
    if missing:
        typer.echo(f"missing driver images: {', '.join(missing)}", err=True)
        raise typer.Exit(1)
    if cluster_failed or others_missing:
        raise typer.Exit(1)


def _other_images(
    spec: ClusterPolicySpec,
    facts: list[NodeFacts],
    reports: list[PoolReport],
    check: Callable[[str], TagCheck],
    source: Path,
    environ: Mapping[str, str],
) -> list[str]:
    """Every non-driver image the policy's operands pull, asked of its registry once; printed
    to stderr (stdout stays the driver table). Returns the images that do not exist."""
    drivers = {r.pool.image for r in reports}
    users: dict[str, set[str]] = {}
    uses = set(policy_images(spec, facts, environ))
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
