"""What a CDI-enabled runtime does with a container's CDI device ids, for the sandbox's
simulated containers: find each ``vendor/class=name`` in the node's CDI spec directories
(``/etc/cdi``, ``/var/run/cdi``: YAML or JSON specs), and merge the spec's and the device's
container edits — the environment and the device nodes (``/dev/nvidia3`` is how a container
sees its GPU). An id no spec defines is an error naming it, as the runtime refuses the
container."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.errors import GpuOperatorError

SPEC_DIRS = ("etc/cdi", "var/run/cdi")
"""The CDI spec directories, under a node's root."""


class CdiError(GpuOperatorError):
    """A CDI device id no spec on the node defines (the runtime refuses the container)."""


@dataclass
class Edits:
    env: dict[str, str] = field(default_factory=dict)
    device_nodes: list[str] = field(default_factory=list)


def _specs(dirs: Iterable[Path]) -> list[dict[str, Any]]:
    specs = []
    for directory in dirs:
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.json")]):
            try:
                body = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(body, dict):
                specs.append(body)
    return specs


def _apply(edits: Edits, container_edits: dict[str, Any]) -> None:
    for entry in container_edits.get("env") or []:
        key, _, value = str(entry).partition("=")
        edits.env[key] = value
    for node in container_edits.get("deviceNodes") or []:
        if node.get("path") and node["path"] not in edits.device_nodes:
            edits.device_nodes.append(node["path"])


def resolve(cdi_ids: Sequence[str], dirs: Iterable[Path]) -> Edits:
    """The merged edits of ``cdi_ids`` (spec-wide edits once per spec, then each device's)."""
    edits = Edits()
    if not cdi_ids:
        return edits
    specs = _specs(dirs)
    applied: set[int] = set()
    for cdi_id in cdi_ids:
        kind, _, name = cdi_id.partition("=")
        for index, spec in enumerate(specs):
            device = next(
                (d for d in spec.get("devices") or [] if d.get("name") == name), None
            ) if spec.get("kind") == kind else None  # fmt: skip
            if device is None:
                continue
            if index not in applied:
                applied.add(index)
                _apply(edits, spec.get("containerEdits") or {})
            _apply(edits, device.get("containerEdits") or {})
            break
        else:
            raise CdiError(f"unresolvable CDI devices {cdi_id}")
    return edits
