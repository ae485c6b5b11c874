"""The building blocks of ClusterPolicy ``nvidia.com/v1``: the fields most component sections
repeat (image, pull policy, resources, args, env) and the small shared shapes (probes, config
map references, service monitors). Field names are the CRD's JSON keys, verbatim."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

IntOrString = Annotated[
    int | str,
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]
Quantities = Annotated[
    dict[str, int | str],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
        }
    ),
]
FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
FreeFormList = Annotated[
    list[dict[str, Any]],
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        }
    ),
]
PullPolicy = Literal["Always", "Never", "IfNotPresent"]


class Spec(BaseModel):
    """Every section: unknown keys are an error naming them (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnvVar(Spec):
    """One environment variable: only plain values (upstream takes no ``valueFrom`` here)."""

    name: str
    value: str = ""


class Resources(Spec):
    limits: Quantities | None = None
    requests: Quantities | None = None


class ImageSpec(Spec):
    """Where an image comes from (§1.2): repository/image:version, or image alone, or a digest."""

    repository: str | None = None
    image: str | None = None
    version: str | None = None
    imagePullPolicy: str | None = Field(
        default=None, description="Always, Never or IfNotPresent; anything else is IfNotPresent"
    )
    imagePullSecrets: list[str] | None = None


class ComponentSpec(ImageSpec):
    """The fields most operand sections repeat; ``enabled`` unset means the section's default.
    ``securityContext`` is v1.9-era (the main container's, merged over ours)."""

    enabled: bool | None = None
    resources: Resources | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    hostNetwork: bool | None = None
    securityContext: FreeForm | None = None


class ConfigMapRef(Spec):
    """A user ConfigMap and the config key in it to use by default."""

    name: str | None = None
    default: str | None = None


class NamedRef(Spec):
    name: str | None = None


class ProbeSpec(Spec):
    initialDelaySeconds: int | None = None
    timeoutSeconds: int | None = None
    periodSeconds: int | None = None
    successThreshold: int | None = None
    failureThreshold: int | None = None


class ServiceMonitorConfig(Spec):
    enabled: bool | None = None
    interval: str | None = None
    scrapeTimeout: str | None = None
    honorLabels: bool | None = None
    additionalLabels: dict[str, str] | None = None
    relabelings: FreeFormList | None = None


class EnvOnly(Spec):
    """A validator sub-section: extra env for one validation init container."""

    env: list[EnvVar] | None = None


class DriverManagerSpec(ImageSpec):
    """The k8s-driver-manager init container of a driver pod."""

    env: list[EnvVar] | None = None


class Toggle(Spec):
    enabled: bool | None = None
