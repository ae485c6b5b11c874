"""The ClusterPolicy CustomResourceDefinition, generated from the pydantic model and upstream's
key table (``upstream_keys``): the same name, scope, required sections, status subresource and
printer columns as upstream's, with a structural OpenAPI v3 schema holding every upstream spec
field with upstream's type (``make crds`` / ``gpu-operator crds`` write it)."""

from __future__ import annotations

from typing import Any

from gpu_operator.operator.crd_document import crd_file, crd_object
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
    status = model_schema(ClusterPolicyStatus)
    status["description"] = "ClusterPolicyStatus is the observed state of the GPU operator"
    return crd_object(
        names={
            "kind": "ClusterPolicy",
            "listKind": "ClusterPolicyList",
            "plural": "clusterpolicies",
            "singular": "clusterpolicy",
        },
        version="v1",
        description="ClusterPolicy is the Schema for the clusterpolicies API",
        spec=spec_schema(),
        status=status,
    )


def crd_yaml() -> str:
    """The CRD as the YAML file checked in under ``deployments/gpu-operator/crds/``."""
    return crd_file("gpu_operator.operator.policy_v1", build_crd())
