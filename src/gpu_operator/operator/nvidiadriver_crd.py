"""The NVIDIADriver CustomResourceDefinition (``nvidiadrivers.nvidia.com``), generated from the
model (``nvidiadriver_v1alpha1``) as the ClusterPolicy CRD is: upstream's name, short names,
scope, required fields, CEL rules, status subresource and printer columns, with a structural
OpenAPI v3 schema (``gpu-operator crds`` writes it beside the ClusterPolicy CRD)."""

from __future__ import annotations

from typing import Any

import yaml

from gpu_operator.operator.nvidiadriver_v1alpha1 import (
    DEFAULT_WITHOUT_SELECTOR,
    KIND,
    PLURAL,
    REQUIRED,
    NVIDIADriverSpec,
    NVIDIADriverStatus,
)
from gpu_operator.operator.openapi import model_schema

CRD_NAME = f"{PLURAL}.nvidia.com"
CRD_FILE = "nvidia.com_nvidiadrivers.yaml"
SHORT_NAMES = ("nvd", "nvdriver", "nvdrivers")


def build_crd() -> dict[str, Any]:
    """The CRD object, as the API server takes it."""
    spec = model_schema(NVIDIADriverSpec)
    spec["description"] = "NVIDIADriverSpec defines the desired state of NVIDIADriver"
    spec["required"] = list(REQUIRED)
    spec["x-kubernetes-validations"] = [dict(DEFAULT_WITHOUT_SELECTOR)]
    status = model_schema(NVIDIADriverStatus)
    status["description"] = "NVIDIADriverStatus defines the observed state of NVIDIADriver"
    root = {
        "type": "object",
        "description": "NVIDIADriver is the Schema for the nvidiadrivers API",
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
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "shortNames": list(SHORT_NAMES),
                "singular": "nvidiadriver",
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"jsonPath": ".status.state", "name": "Status", "type": "string"},
                        {"jsonPath": ".spec.default", "name": "Default", "type": "boolean"},
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
        "# Generated from gpu_operator.operator.nvidiadriver_v1alpha1 by `gpu-operator crds`; "
        "do not edit.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
