"""``gpu-operator images``: every image the chart and policy will pull for the given node OSes,
and (with ``--mirror``) the commands that copy them into a private registry. A ``helm template``
stream is read as the operator would see it: its Deployment's ``*_IMAGE`` env, and the chart's
image notes (what a version pin became) printed to stderr, as NOTES and the Events say them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from gpu_operator.commands.render import (
    DRIVERS_HELP,
    load_policy_stream,
    nvidia_driver_docs,
)
from gpu_operator.driver.images import NodeOs
from gpu_operator.errors import ConfigError
from gpu_operator.operator.images import IMAGE_ENV
from gpu_operator.operator.inventory import (
    ImageUse,
    mirror_commands,
    pod_images,
    policy_images,
    synthetic_nodes,
)
from gpu_operator.operator.upstream_images import image_notes

OPERATOR_DEPLOYMENT = "gpu-operator"


def operator_environ(docs: list[dict[str, Any]]) -> Mapping[str, str]:
    """The ``*_IMAGE`` env of the operator Deployment in a ``helm template`` stream (what the
    operator falls back to for an operand without image fields), over this shell's env."""
    env = {k: v for k, v in os.environ.items() if k in set(IMAGE_ENV.values())}
    for doc in docs:
        if (
            doc.get("kind") == "Deployment"
            and (doc.get("metadata") or {}).get("name") == OPERATOR_DEPLOYMENT
        ):
            pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
            for container in pod.get("containers") or ():
                for var in container.get("env") or ():
                    if var.get("name") in IMAGE_ENV.values() and "value" in var:
                        env[str(var["name"])] = str(var["value"])
    return env


def print_notes(policy_doc: Mapping[str, Any]) -> None:
    """The chart's image notes on the ClusterPolicy (stderr: stdout stays the table)."""
    for line in image_notes(policy_doc):
        typer.echo(f"note: {line}", err=True)


def parse_os(text: str) -> NodeOs:
    os_id, sep, version = text.partition(":")
    if not sep or not os_id or not version:
        raise ConfigError(f"--node-os: expected ID:VERSION_ID (e.g. rocky:8.5), got {text!r}")
    return NodeOs(os_id, version)


def images_command(
    policy: Path = typer.Option(
        ...,
        "-f",
        "--filename",
        help="ClusterPolicy YAML, or a `helm template` stream ('-' = stdin).",
    ),
    node_os: list[str] = typer.Option(
        [], "--node-os", help="A GPU node OS as ID:VERSION_ID (repeat); e.g. rocky:8.5."
    ),
    kernel: list[str] = typer.Option([], "--kernel", help="Node kernel (precompiled drivers)."),
    mirror: str | None = typer.Option(
        None, "--mirror", help="Print skopeo commands copying every image under this registry."
    ),
    drivers: Path | None = typer.Option(None, "--nvidia-drivers", help=DRIVERS_HELP),
) -> None:
    """List every image to pull (and how to mirror them)."""
    stream, doc, spec = load_policy_stream(policy)
    crs = nvidia_driver_docs(stream, drivers, policy)
    docs = stream if str(policy) != "-" else []
    print_notes(doc)
    oses = [parse_os(t) for t in node_os] or [NodeOs("ubuntu", "24.04")]
    environ = operator_environ(docs)
    nodes = synthetic_nodes(oses, kernel)
    uses: set[ImageUse] = set(policy_images(spec, nodes, environ, nvidia_drivers=crs))
    for other in docs:
        if other.get("kind") in ("Deployment", "DaemonSet", "Job"):
            uses.update(pod_images(other))
    images = sorted({u.image for u in uses})
    if mirror:
        for line in mirror_commands(images, mirror):
            typer.echo(line)
        return
    width = max(len(i) for i in images)
    for image in images:
        users = sorted({u.used_by for u in uses if u.image == image})
        typer.echo(f"{image:<{width}}  {', '.join(users)}")
