"""NVIDIADriver ``nvidia.com/v1alpha1`` (cluster-scoped): the pydantic model of every spec field
of upstream's CRD with upstream's types, enums and defaults, the Kubernetes types it embeds
(node affinity, tolerations, pod security context) typed as the API types them, and the status
(``state``, ``conditions``). Parse a CR with ``parse_nvidiadriver``; the CRD is generated from
this model (``nvidiadriver_crd``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import IntOrString, Spec

GROUP_VERSION = "nvidia.com/v1alpha1"
KIND = "NVIDIADriver"
PLURAL = "nvidiadrivers"
DEFAULT_IMAGE = "nvcr.io/nvidia/driver"
DriverType = Literal["gpu", "vgpu", "vgpu-host-manager"]
ImageName = Annotated[str, Field(pattern=r"[a-zA-Z0-9\-]+")]
Int32 = Annotated[int, Field(json_schema_extra={"format": "int32"})]
Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]
AtLeastOne = Annotated[int, Field(ge=1, json_schema_extra={"format": "int32"})]
NonNegative = Annotated[int, Field(ge=0)]
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantities = Annotated[
    dict[str, int | str],
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": QUANTITY,
            },
        }
    ),
]


class K8s(BaseModel):
    """An embedded Kubernetes API type: unknown keys are errors, as ``kubectl --validate``."""

    model_config = ConfigDict(extra="forbid")


class NodeSelectorRequirement(K8s):
    key: str
    operator: str = Field(description="In, NotIn, Exists, DoesNotExist, Gt or Lt")
    values: list[str] | None = None


class NodeSelectorTerm(K8s):
    matchExpressions: list[NodeSelectorRequirement] | None = None
    matchFields: list[NodeSelectorRequirement] | None = None


class PreferredSchedulingTerm(K8s):
    preference: NodeSelectorTerm
    weight: Int32


class NodeSelector(K8s):
    nodeSelectorTerms: list[NodeSelectorTerm]


class NodeAffinity(K8s):
    preferredDuringSchedulingIgnoredDuringExecution: list[PreferredSchedulingTerm] | None = None
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = None


class Toleration(K8s):
    effect: str | None = None
    key: str | None = None
    operator: str | None = None
    tolerationSeconds: Int64 | None = None
    value: str | None = None


class ProfileRef(K8s):
    localhostProfile: str | None = None
    type: str


class SELinuxOptions(K8s):
    level: str | None = None
    role: str | None = None
    type: str | None = None
    user: str | None = None


class Sysctl(K8s):
    name: str
    value: str


class WindowsOptions(K8s):
    gmsaCredentialSpec: str | None = None
    gmsaCredentialSpecName: str | None = None
    hostProcess: bool | None = None
    runAsUserName: str | None = None


class PodSecurityContext(K8s):
    appArmorProfile: ProfileRef | None = None
    fsGroup: Int64 | None = None
    fsGroupChangePolicy: str | None = None
    runAsGroup: Int64 | None = None
    runAsNonRoot: bool | None = None
    runAsUser: Int64 | None = None
    seLinuxChangePolicy: str | None = None
    seLinuxOptions: SELinuxOptions | None = None
    seccompProfile: ProfileRef | None = None
    supplementalGroups: list[Int64] | None = None
    supplementalGroupsPolicy: str | None = None
    sysctls: list[Sysctl] | None = None
    windowsOptions: WindowsOptions | None = None


class EnvVar(Spec):
    name: str
    value: str | None = None


class ResourceRequirements(Spec):
    limits: Quantities | None = None
    requests: Quantities | None = None


class DriverManagerSpec(Spec):
    repository: str | None = None
    image: ImageName | None = None
    version: str | None = None
    imagePullPolicy: str | None = None
    imagePullSecrets: list[str] | None = None
    env: list[EnvVar] | None = None


class ContainerProbeSpec(Spec):
    initialDelaySeconds: Int32 | None = None
    timeoutSeconds: AtLeastOne | None = None
    periodSeconds: AtLeastOne | None = None
    successThreshold: AtLeastOne | None = None
    failureThreshold: AtLeastOne | None = None


class GPUDirectRDMASpec(Spec):
    enabled: bool | None = None
    useHostMofed: bool | None = None


class SideDriverSpec(Spec):
    """GDS (``gds``) and GDRCopy (``gdrcopy``): the same fields upstream gives both."""

    enabled: bool | None = None
    repository: str | None = None
    image: ImageName | None = None
    version: str | None = None
    imagePullPolicy: str | None = None
    imagePullSecrets: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None


class NamedConfig(Spec):
    name: str | None = None


class LicensingConfigSpec(Spec):
    secretName: str | None = None
    name: str | None = Field(default=None, description="Deprecated: use secretName")
    nlsEnabled: bool | None = None


class PodDeletionSpec(Spec):
    force: bool = False
    timeoutSeconds: NonNegative = 300
    deleteEmptyDir: bool = False


class WaitForCompletionSpec(Spec):
    podSelector: str | None = None
    timeoutSeconds: NonNegative = 0


class DrainSpec(Spec):
    enable: bool = False
    force: bool = False
    podSelector: str | None = None
    timeoutSeconds: NonNegative = 300
    deleteEmptyDir: bool = False


class UpgradePolicySpec(Spec):
    autoUpgrade: bool = True
    maxParallelUpgrades: NonNegative = 1
    maxUnavailable: IntOrString = Field(default="25%")
    podDeletion: PodDeletionSpec | None = None
    waitForCompletion: WaitForCompletionSpec | None = None
    drain: DrainSpec | None = None


def _immutable(field: str) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [
            {
                "rule": "self == oldSelf",
                "message": f"{field} is an immutable field. Please create a new NvidiaDriver "
                "resource instead when you want to change this setting.",
            }
        ]
    }


class NVIDIADriverSpec(Spec):
    """``spec``: upstream's fields, JSON names verbatim."""

    default: bool = Field(
        default=False,
        description="The fallback driver for GPU nodes no non-default NVIDIADriver selects",
    )
    driverType: DriverType = Field(default="gpu", json_schema_extra=_immutable("driverType"))
    usePrecompiled: bool | None = Field(
        default=None, json_schema_extra=_immutable("usePrecompiled")
    )
    useOpenKernelModules: bool | None = Field(
        default=None, description="Deprecated: use kernelModuleType"
    )
    kernelModuleType: Literal["auto", "open", "proprietary"] = "auto"
    startupProbe: ContainerProbeSpec | None = None
    livenessProbe: ContainerProbeSpec | None = None
    readinessProbe: ContainerProbeSpec | None = None
    rdma: GPUDirectRDMASpec | None = None
    gds: SideDriverSpec | None = None
    gdrcopy: SideDriverSpec | None = None
    repository: str | None = None
    image: str = DEFAULT_IMAGE
    version: str | None = None
    imagePullPolicy: str | None = None
    imagePullSecrets: list[str] | None = None
    manager: DriverManagerSpec | None = None
    resources: ResourceRequirements | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    repoConfig: NamedConfig | None = None
    certConfig: NamedConfig | None = None
    licensingConfig: LicensingConfigSpec | None = None
    virtualTopologyConfig: NamedConfig | None = None
    kernelModuleConfig: NamedConfig | None = None
    secretEnv: str | None = None
    hostNetwork: bool | None = None
    nodeSelector: dict[str, str] | None = None
    nodeAffinity: NodeAffinity | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    priorityClassName: str | None = None
    podSecurityContext: PodSecurityContext | None = None
    upgradePolicy: UpgradePolicySpec | None = None


REQUIRED = ("default", "driverType", "image")
DEFAULT_WITHOUT_SELECTOR = {
    "rule": "has(self.default) && self.default ? !has(self.nodeSelector) || "
    "size(self.nodeSelector) == 0 : true",
    "message": "default NVIDIADriver must not use nodeSelector",
}


class Condition(Spec):
    """``metav1.Condition``."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: Literal["True", "False", "Unknown"]
    observedGeneration: NonNegative | None = Field(
        default=None, json_schema_extra={"format": "int64"}
    )
    lastTransitionTime: str = Field(json_schema_extra={"format": "date-time"})
    reason: str = Field(
        min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    )
    message: str = Field(max_length=32768)


class NVIDIADriverStatus(Spec):
    state: Literal["ignored", "ready", "notReady", "disabled"]
    namespace: str | None = None
    conditions: list[Condition] | None = None


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def parse_nvidiadriver_spec(data: Any, *, source: str) -> NVIDIADriverSpec:
    """A CR's ``spec`` → the model; every bad field in one ``ConfigError`` naming it (the CEL
    rule the CRD carries is checked too, for CRs that never met an API server)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: spec: expected a mapping, got {type(data).__name__}")
    try:
        spec = NVIDIADriverSpec.model_validate(data or {})
    except ValidationError as error:
        problems = [f"spec.{_where(e['loc'])}: {e['msg']}" for e in error.errors()]
        raise ConfigError(f"{source}: {'; '.join(problems)}") from None
    if spec.default and spec.nodeSelector:
        raise ConfigError(f"{source}: spec.nodeSelector: {DEFAULT_WITHOUT_SELECTOR['message']}")
    return spec
