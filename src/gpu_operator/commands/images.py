"""``gpu-operator images``: every image the chart and policy will pull for the given node OSes,
and (with ``--mirror``) the commands that copy them into a private registry."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gpu_operator.commands.render import load_documents, load_policy_file
from gpu_operator.errors import ConfigError
from gpu_operator.operator.images import NodeOs
from gpu_operator.operator.inventory import (
    ImageUse,
    mirror_commands,
    pod_images,
    policy_images,
    synthetic_nodes,
)


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
) -> None:
    """List every image to pull (and how to mirror them)."""
    _, spec = load_policy_file(policy)
    oses = [parse_os(t) for t in node_os] or [NodeOs("ubuntu", "24.04")]
    uses: set[ImageUse] = set(policy_images(spec, synthetic_nodes(oses, kernel), os.environ))
    if str(policy) != "-":
        for doc in load_documents(policy):
            if doc.get("kind") in ("Deployment", "DaemonSet", "Job"):
                uses.update(pod_images(doc))
    images = sorted({u.image for u in uses})
    if mirror:
        for line in mirror_commands(images, mirror):
            typer.echo(line)
        return
    width = max(len(i) for i in images)
    for image in images:
        users = sorted({u.used_by for u in uses if u.image == image})
        typer.echo(f"{image:<{width}}  {', '.join(users)}")
