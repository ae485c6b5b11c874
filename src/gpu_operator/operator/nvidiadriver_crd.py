"""The NVIDIADriver CustomResourceDefinition (``nvidiadrivers.nvidia.com``), generated from the
model (``nvidiadriver_v1alpha1``) as the ClusterPolicy CRD is: upstream's name, short names,
scope, required fields, CEL rules, status subresource and printer columns, with a structural
OpenAPI v3 schema (``gpu-operator crds`` writes it beside the ClusterPolicy CRD)."""

from __future__ import annotations

from typing import Any

from gpu_operator.operator.crd_document import crd_file, crd_object
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
    return crd_object(
        names={
            "kind": KIND,
            "listKind": f"{KIND}List",
            "plural": PLURAL,
            "shortNames": list(SHORT_NAMES),
            "singular": "nvidiadriver",
        },
        version="v1alpha1",
        description="NVIDIADriver is the Schema for the nvidiadrivers API",
        spec=spec,
        status=status,
        columns=({"jsonPath": ".spec.default", "name": "Default", "type": "boolean"},),
    )


def crd_yaml() -> str:
    """The CRD as the YAML file checked in under ``deployments/gpu-operator/crds/``."""
    return crd_file("gpu_operator.operator.nvidiadriver_v1alpha1", build_crd())
