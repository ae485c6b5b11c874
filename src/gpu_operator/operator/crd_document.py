"""The shape both of our CustomResourceDefinitions share (ClusterPolicy's and NVIDIADriver's):
a cluster-scoped ``nvidia.com`` CRD with one served, stored version, a status subresource, printer
columns and a root OpenAPI v3 schema holding ``spec`` and ``status``; and the generated YAML file
with its do-not-edit header."""

from __future__ import annotations

from typing import Any

import yaml

_AGE_COLUMN = {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "string"}
_STATUS_COLUMN = {"jsonPath": ".status.state", "name": "Status", "type": "string"}


def crd_object(
    *,
    names: dict[str, Any],
    version: str,
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    """The CRD object, as the API server takes it. ``columns`` go between the Status and Age
    printer columns."""
    root = {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names['plural']}.nvidia.com"},
        "spec": {
            "group": "nvidia.com",
            "names": names,
            "scope": "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        dict(_STATUS_COLUMN),
                        *(dict(column) for column in columns),
                        dict(_AGE_COLUMN),
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_file(model_module: str, crd: dict[str, Any]) -> str:
    """The CRD as the YAML file checked in under ``deployments/gpu-operator/crds/``, headed by a
    line naming the model module it is generated from."""
    header = f"# Generated from {model_module} by `gpu-operator crds`; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)
