"""The ClusterPolicy CustomResourceDefinition, generated from the pydantic model: the same
name, scope, required sections, status subresource and printer columns as upstream's, with a
structural OpenAPI v3 schema (``make crds`` / ``gpu-operator crds`` write it)."""

from __future__ import annotations

from typing import Any

import yaml

from gpu_operator.operator.policy_v1 import (
    REQUIRED_SECTIONS,
    ClusterPolicySpec,
    ClusterPolicyStatus,
)

CRD_NAME = "clusterpolicies.nvidia.com"
CRD_FILE = "nvidia.com_clusterpolicies.yaml"


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s, fold ``Optional`` (anyOf with null) into the type, drop titles."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "default" and value is None:
            continue
        if key == "additionalProperties" and value is False:
            continue  # not structural; the API server prunes unknown fields instead
        if key == "properties":
            out[key] = {name: _structural(v, defs) for name, v in value.items()}
        else:
            out[key] = _structural(value, defs)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out.pop("type", None)
    return out


def _schema(model: type[ClusterPolicySpec] | type[ClusterPolicyStatus]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    result: dict[str, Any] = _structural(raw, raw.get("$defs", {}))
    return result


def build_crd() -> dict[str, Any]:
    """The CRD object, as the API server takes it."""
    spec = _schema(ClusterPolicySpec)
    spec["required"] = list(REQUIRED_SECTIONS)
    spec["description"] = "ClusterPolicy defines the desired state of the GPU operator"
    status = _schema(ClusterPolicyStatus)
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
