"""The ClusterPolicy CustomResourceDefinition, generated from the pydantic model and upstream's
key table (``upstream_keys``): the same name, scope, required sections, status subresource and
printer columns as upstream's, with a structural OpenAPI v3 schema holding every upstream spec
field with upstream's type (``make crds`` / ``gpu-operator crds`` write it)."""

from __future__ import annotations

from typing import Any

import yaml

from gpu_operator.operator.openapi import model_schema, overlay
from gpu_operator.operator.policy_v1 import (
    REQUIRED_SECTIONS,
    ClusterPolicySpec,
    ClusterPolicyStatus,
)
from gpu_operator.operator.upstream_keys import POLICY_LEGACY, POLICY_MAIN

CRD_NAME = "clusterpolicies.nvidia.com"
CRD_FILE = "nvidia.com_clusterpolicies.yaml"


def spec_schema() -> dict[str, Any]:
    """The spec schema: our model's, with every upstream field (main's and earlier releases')
    laid over it typed as upstream types it, so our CRD is a superset of upstream's."""
    spec = overlay(model_schema(ClusterPolicySpec), {**POLICY_LEGACY, **POLICY_MAIN})
    spec["required"] = list(REQUIRED_SECTIONS)
    spec["description"] = "ClusterPolicy defines the desired state of the GPU operator"
    return spec


def build_crd() -> dict[str, Any]:
    """The CRD object, as the API server takes it."""
    spec = spec_schema()
    status = model_schema(ClusterPolicyStatus)
    status["description"] = "ClusterPolicyStatus is the observed state of the GPU operator"
    root = {
        "type": "object",
        "description": "ClusterPolicy is the Schema for the clusterpolicies API",
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
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": "nvidia.com",
            "names": {
                "kind": "ClusterPolicy",
                "listKind": "ClusterPolicyList",
                "plural": "clusterpolicies",
                "singular": "clusterpolicy",
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"jsonPath": ".status.state", "name": "Status", "type": "string"},
                        {
                            "jsonPath": ".metadata.creationTimestamp",
                            "name": "Age",
                            "type": "string",
                        },
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML file checked in under ``deployments/gpu-operator/crds/``."""
    header = (
        "# Generated from gpu_operator.operator.policy_v1 by `gpu-operator crds`; do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
