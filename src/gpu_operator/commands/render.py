"""``gpu-operator render``: every object the operator would apply for a ClusterPolicy and a set
of nodes (a dry run for review and GitOps), from the same pure renderers as the reconciler.
With ``driver.useNvidiaDriverCRD`` the NVIDIADriver CRs come from the same stream (a ``helm
template`` with ``deployDefaultCR`` holds the default one) and ``--nvidia-drivers FILE``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
import yaml

from gpu_operator.cli_settings import OPERATOR_NAMESPACE, option, setting
from gpu_operator.errors import ConfigError
from gpu_operator.operator.desired import Desired, desired_state, nodes_from_objects
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, deprecations, parse_spec

NVIDIADRIVER_KIND = "NVIDIADriver"
NVIDIADRIVER_API = "nvidia.com/v1alpha1"
DRIVERS_HELP = (
    "NVIDIADriver CRs (YAML, e.g. `kubectl get nvd -o yaml`), with driver.useNvidiaDriverCRD; "
    "those in -f count too."
)


def read_text(path: Path) -> str:
    try:
        return typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from error


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every object in a YAML stream; ``kind: List``/``*List`` items are unpacked."""
    try:
        docs = list(yaml.safe_load_all(read_text(path)))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not YAML: {error}") from error
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, list):
            out += [d for d in doc if isinstance(d, dict)]
        elif isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List"):
            out += [d for d in doc.get("items") or [] if isinstance(d, dict)]
        elif isinstance(doc, dict):
            out.append(doc)
    return out


def load_policy_file(path: Path) -> tuple[dict[str, Any], ClusterPolicySpec]:
    """The (first) ClusterPolicy in ``path`` (a file, or a ``helm template`` stream)."""
    _, doc, spec = load_policy_stream(path)
    return doc, spec


def load_policy_stream(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any], ClusterPolicySpec]:
    """Every document of ``path`` (read once, so stdin works) and its first ClusterPolicy."""
    docs = load_documents(path)
    for doc in docs:
        if doc.get("kind") == "ClusterPolicy":
            if doc.get("apiVersion") != "nvidia.com/v1":
                raise ConfigError(f"{path}: ClusterPolicy apiVersion must be nvidia.com/v1")
            return docs, doc, parse_spec(doc.get("spec"), source=str(path))
    raise ConfigError(f"{path}: no ClusterPolicy (apiVersion nvidia.com/v1) in this file")


def nvidia_driver_docs(
    docs: list[dict[str, Any]], extra: Path | None = None, source: Path | None = None
) -> list[dict[str, Any]]:
    """The NVIDIADriver CRs among ``docs`` and in ``extra`` (``--nvidia-drivers``: e.g.
    ``kubectl get nvd -o yaml``); a document of that kind with another apiVersion is refused,
    naming its file (``source``: where ``docs`` came from)."""
    found = []
    for where_from, listed in ((source, docs), (extra, load_documents(extra) if extra else [])):
        for doc in listed:
            if doc.get("kind") != NVIDIADRIVER_KIND:
                continue
            if doc.get("apiVersion") != NVIDIADRIVER_API:
                where = f"{where_from}: " if where_from else ""
                raise ConfigError(
                    f"{where}NVIDIADriver {(doc.get('metadata') or {}).get('name')!r}: "
                    f"apiVersion must be {NVIDIADRIVER_API}, got {doc.get('apiVersion')!r}"
                )
            found.append(doc)
    return found


def desired_from_files(
    policy: Path, nodes: Path | None, namespace: str, drivers: Path | None = None
) -> Desired:
    return _desired(load_policy_stream(policy), nodes, namespace, drivers, policy)


def _desired(
    stream: tuple[list[dict[str, Any]], dict[str, Any], ClusterPolicySpec],
    nodes: Path | None,
    namespace: str,
    drivers: Path | None,
    stream_source: Path,
) -> Desired:
    docs, doc, spec = stream
    meta = doc.get("metadata") or {}
    node_objects = (
        [d for d in load_documents(nodes) if d.get("kind", "Node") == "Node"] if nodes else []
    )
    return desired_state(
        spec,
        nodes_from_objects(node_objects),
        namespace=namespace,
        environ=os.environ,
        policy_name=str(meta.get("name") or "cluster-policy"),
        policy_uid=meta.get("uid"),
        nvidia_drivers=nvidia_driver_docs(docs, drivers, stream_source),
    )


class _PlainDumper(yaml.SafeDumper):
    """No ``&id001`` anchors: each object reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_PlainDumper.add_representer(str, _text)


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, width=100)


def format_yaml(desired: Desired, warnings: list[str]) -> str:
    parts = [f"# warning: deprecated field {w} is accepted and ignored\n" for w in warnings]
    for name, patch in sorted(desired.node_patches.items()):
        parts.append(f"# node {name}: labels {json.dumps(patch.labels, sort_keys=True)}\n")
    parts += _driver_notes(desired)
    for state in desired.states:
        if not state.enabled:
            parts.append(f"# {state.name}: disabled\n")
        elif state.rendered.skipped:
            parts.append(f"# {state.name}: skipped: {state.rendered.skipped}\n")
        for obj in state.rendered.objects:
            parts.append("---\n" + dump_yaml(obj))
    return "".join(parts)


def _driver_notes(desired: Desired) -> list[str]:
    """With NVIDIADriver CRs: which CR drives which nodes, and what a CR cannot do."""
    drivers = desired.drivers
    if drivers is None:
        return []
    parts = [
        f"# NVIDIADriver {name}: nodes {', '.join(nodes)}\n"
        for name, nodes in sorted(drivers.assignment.nodes.items())
    ]
    for name, conflicts in sorted(drivers.assignment.conflicts.items()):
        parts += [f"# NVIDIADriver {name}: {c.message}\n" for c in conflicts]
    parts += [f"# NVIDIADriver {name}: {error}\n" for name, error in sorted(drivers.errors.items())]
    return parts


def render_command(
    policy: Path = typer.Option(..., "-f", "--filename", help="ClusterPolicy YAML ('-' = stdin)."),
    nodes: Path | None = typer.Option(
        None, "--nodes", help="Node objects (YAML list, List or stream): labels and nodeInfo."
    ),
    drivers: Path | None = typer.Option(None, "--nvidia-drivers", help=DRIVERS_HELP),
    output: str = typer.Option("yaml", "-o", "--output", help="yaml or json."),
    namespace: str | None = option(
        OPERATOR_NAMESPACE, "-n", help="Operand namespace.", default="gpu-operator"
    ),
) -> None:
    """Print every object the operator would apply for POLICY and NODES."""
    operands: str = setting(OPERATOR_NAMESPACE, namespace, "gpu-operator")
    if output not in ("yaml", "json"):
        raise ConfigError(f"--output: expected yaml or json, got {output!r}")
    stream = load_policy_stream(policy)
    spec = stream[2]
    desired = _desired(stream, nodes, operands, drivers, policy)
    if output == "json":
        listing = {"apiVersion": "v1", "kind": "List", "items": desired.objects()}
        typer.echo(json.dumps(listing, indent=2))
    else:
        typer.echo(format_yaml(desired, deprecations(spec)), nl=False)
