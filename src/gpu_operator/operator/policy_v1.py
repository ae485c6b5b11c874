"""ClusterPolicy ``nvidia.com/v1``: every section and field of the upstream CRD (reference §1),
with nil-means-enabled defaults, deprecated fields accepted (and listed by ``deprecations``), and
our own additions under our own names (``driver.osAliases``, ``draDriver``). Parse with
``load_policy``."""

from __future__ import annotations

import functools
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import (
    ComponentSpec,
    ConfigMapRef,
    DriverManagerSpec,
    EnvOnly,
    FreeForm,
    FreeFormList,
    ImageSpec,
    IntOrString,
    NamedRef,
    ProbeSpec,
    ServiceMonitorConfig,
    Spec,
    Toggle,
)
from gpu_operator.operator.openapi import model_schema
from gpu_operator.operator.upstream_fields import accepted_not_used, sort_spec


class InitContainerSpec(ImageSpec):
    """Deprecated: the CUDA base image of the old validation init containers."""


class OperatorMetrics(Spec):
    serviceMonitor: ServiceMonitorConfig | None = None


class OperatorSpec(Spec):
    defaultRuntime: Literal["docker", "crio", "containerd"] | None = Field(
        default=None, description="Deprecated: ignored, the runtime is detected per node"
    )
    runtimeClass: str = "nvidia"
    initContainer: InitContainerSpec | None = Field(default=None, description="Deprecated")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    metrics: OperatorMetrics | None = None
    use_ocp_driver_toolkit: bool | None = None


class RollingUpdateSpec(Spec):
    """Upstream types it a string ("1", "10%"); a number (helm --set …=1) is taken as its text."""

    maxUnavailable: str | None = None

    @field_validator("maxUnavailable", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DaemonsetsSpec(Spec):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    tolerations: FreeFormList | None = None
    priorityClassName: str | None = None
    updateStrategy: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rollingUpdate: RollingUpdateSpec | None = None
    podSecurityContext: FreeForm | None = None


class RdmaSpec(Spec):
    enabled: bool | None = None
    useHostMofed: bool | None = None


class PodDeletionSpec(Spec):
    force: bool | None = None
    timeoutSeconds: int | None = None
    deleteEmptyDir: bool | None = None


class WaitForCompletionSpec(Spec):
    podSelector: str | None = None
    timeoutSeconds: int | None = None


class DrainSpec(Spec):
    enable: bool | None = None
    force: bool | None = None
    podSelector: str | None = None
    timeoutSeconds: int | None = None
    deleteEmptyDir: bool | None = None


class DriverUpgradePolicySpec(Spec):
    autoUpgrade: bool | None = None
    maxParallelUpgrades: int | None = None
    maxUnavailable: IntOrString | None = None
    podDeletion: PodDeletionSpec | None = None
    waitForCompletion: WaitForCompletionSpec | None = None
    drain: DrainSpec | None = None


class RepoConfig(Spec):
    configMapName: str | None = None


class LicensingConfig(Spec):
    configMapName: str | None = None
    secretName: str | None = None
    nlsEnabled: bool | None = None


class VirtualTopology(Spec):
    config: str | None = None


class DriverSpec(ComponentSpec):
    useNvidiaDriverCRD: bool | None = None
    usePrecompiled: bool | None = None
    kernelModuleType: Literal["auto", "open", "proprietary"] = "auto"
    useOpenKernelModules: bool | None = Field(
        default=None, description="Deprecated: use kernelModuleType"
    )
    startupProbe: ProbeSpec | None = None
    livenessProbe: ProbeSpec | None = None
    readinessProbe: ProbeSpec | None = None
    rdma: RdmaSpec | None = None
    upgradePolicy: DriverUpgradePolicySpec | None = None
    manager: DriverManagerSpec | None = None
    repoConfig: RepoConfig | None = None
    certConfig: NamedRef | None = None
    licensingConfig: LicensingConfig | None = None
    virtualTopology: VirtualTopology | None = None
    kernelModuleConfig: NamedRef | None = None
    secretEnv: str | None = None
    osAliases: dict[str, str] | None = Field(
        default=None,
        description="gpu-operator extension: node OS ID -> OS ID whose driver build to use "
        "(e.g. almalinux: rhel)",
    )


class ToolkitSpec(ComponentSpec):
    installDir: str = "/usr/local/nvidia"


class MpsSpec(Spec):
    root: str = "/run/nvidia/mps"


class DevicePluginSpec(ComponentSpec):
    config: ConfigMapRef | None = None
    mps: MpsSpec | None = None


class DcgmSpec(ComponentSpec):
    hostPort: int = 5555


class ExporterService(Spec):
    type: str | None = None
    internalTrafficPolicy: str | None = None


class HpcJobMapping(Spec):
    enabled: bool | None = None
    directory: str | None = None


class DcgmExporterSpec(ComponentSpec):
    config: NamedRef | None = None
    serviceMonitor: ServiceMonitorConfig | None = None
    service: ExporterService | None = None
    hostPID: bool | None = None
    hpcJobMapping: HpcJobMapping | None = None
    enablePodLabels: bool | None = None
    enablePodUID: bool | None = None
    podLabelAllowlistRegex: list[str] | None = None
    annotations: dict[str, str] | None = None


class MigSpec(Spec):
    strategy: Literal["none", "single", "mixed"] = "single"


class MigManagerSpec(ComponentSpec):
    config: ConfigMapRef | None = None
    gpuClientsConfig: NamedRef | None = None


class ValidatorSpec(ComponentSpec):
    plugin: EnvOnly | None = None
    toolkit: EnvOnly | None = None
    driver: EnvOnly | None = None
    cuda: EnvOnly | None = None
    vfioPCI: EnvOnly | None = None
    vgpuManager: EnvOnly | None = None
    vgpuDevices: EnvOnly | None = None


class CdiSpec(Spec):
    enabled: bool | None = None
    default: bool | None = Field(default=None, description="Deprecated")
    nriPluginEnabled: bool | None = None


class SandboxWorkloadsSpec(Spec):
    enabled: bool | None = None
    defaultWorkload: Literal["container", "vm-passthrough", "vm-vgpu"] = "container"
    mode: Literal["kubevirt", "kata"] = "kubevirt"


class ManagerWithDriverSpec(ComponentSpec):
    driverManager: DriverManagerSpec | None = None


class VgpuManagerSpec(ManagerWithDriverSpec):
    kernelModuleConfig: NamedRef | None = None


class VgpuDeviceManagerSpec(ComponentSpec):
    config: ConfigMapRef | None = None


class CcManagerSpec(ComponentSpec):
    defaultMode: str | None = None


class KataManagerSpec(ComponentSpec):
    config: FreeForm | None = None


class DraDriverSpec(ComponentSpec):
    """gpu-operator extension: the DRA kubelet plugin ``gpu.nvidia.com`` (``gpu-operator
    dra-driver``) as a ClusterPolicy operand; NVIDIA deploys its DRA driver only with its
    GPUCluster CR. Off by default."""

    featureGates: dict[str, bool] | None = Field(
        default=None,
        description="the DRA driver's feature gates (e.g. DynamicMIG: true), rendered as "
        "FEATURE_GATES, as NVIDIA's chart renders draDriver.featureGates",
    )
    nodeSelector: dict[str, str] | None = Field(
        default=None,
        description="node labels the DRA driver's nodes must also carry (with the device "
        "plugin on: a split, e.g. the device plugin's deploy label set to 'false' on them)",
    )


class HostPathsSpec(Spec):
    rootFS: str = "/"
    driverInstallDir: str = "/run/nvidia/driver"
    kubeletRootDir: str = "/var/lib/kubelet"


class ClusterPolicySpec(Spec):
    """``spec``: the required sections first (the CRD requires them), then the optional ones."""

    operator: OperatorSpec = Field(default_factory=OperatorSpec)
    daemonsets: DaemonsetsSpec = Field(default_factory=DaemonsetsSpec)
    driver: DriverSpec = Field(default_factory=DriverSpec)
    toolkit: ToolkitSpec = Field(default_factory=ToolkitSpec)
    devicePlugin: DevicePluginSpec = Field(default_factory=DevicePluginSpec)
    dcgm: DcgmSpec = Field(default_factory=DcgmSpec)
    dcgmExporter: DcgmExporterSpec = Field(default_factory=DcgmExporterSpec)
    gfd: ComponentSpec = Field(default_factory=ComponentSpec)
    nodeStatusExporter: ComponentSpec = Field(default_factory=ComponentSpec)
    mig: MigSpec = Field(default_factory=MigSpec)
    migManager: MigManagerSpec = Field(default_factory=MigManagerSpec)
    validator: ValidatorSpec = Field(default_factory=ValidatorSpec)
    psp: Toggle | None = Field(default=None, description="Deprecated: PodSecurityPolicy is gone")
    psa: Toggle | None = None
    cdi: CdiSpec = Field(default_factory=CdiSpec)
    gds: ComponentSpec | None = None
    gdrcopy: ComponentSpec | None = None
    sandboxWorkloads: SandboxWorkloadsSpec = Field(default_factory=SandboxWorkloadsSpec)
    vfioManager: ManagerWithDriverSpec | None = None
    sandboxDevicePlugin: ComponentSpec | None = None
    vgpuManager: VgpuManagerSpec | None = None
    vgpuDeviceManager: VgpuDeviceManagerSpec | None = None
    kataSandboxDevicePlugin: ComponentSpec | None = None
    ccManager: CcManagerSpec | None = None
    kataManager: KataManagerSpec | None = Field(default=None, description="Deprecated")
    draDriver: DraDriverSpec | None = Field(
        default=None, description="gpu-operator extension: the DRA driver (docs/dra.md)"
    )
    hostPaths: HostPathsSpec = Field(default_factory=HostPathsSpec)

    # Upstream fields the parsed spec set that do nothing here (see ``upstream_fields``).
    _not_used: list[str] = PrivateAttr(default_factory=list)

    @property
    def not_used(self) -> list[str]:
        """``["spec.gds: GPUDirect Storage (nvidia-fs) is not deployed; …", …]``."""
        return list(self._not_used)


REQUIRED_SECTIONS = (
    "operator",
    "daemonsets",
    "driver",
    "toolkit",
    "devicePlugin",
    "dcgm",
    "dcgmExporter",
    "gfd",
    "nodeStatusExporter",
)

# Section -> its value when ``enabled`` is unset (reference §1.1).
ENABLED_BY_DEFAULT = {
    "driver": True,
    "toolkit": True,
    "devicePlugin": True,
    "dcgm": True,
    "dcgmExporter": True,
    "gfd": True,
    "migManager": True,
    "nodeStatusExporter": False,
    "cdi": True,
    "gds": False,
    "gdrcopy": False,
    "draDriver": False,
}

DEPRECATED = (
    ("operator", "defaultRuntime"),
    ("operator", "initContainer"),
    ("driver", "useOpenKernelModules"),
    ("cdi", "default"),
    ("psp",),
    ("kataManager",),
)


class Condition(Spec):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    lastTransitionTime: str | None = None
    observedGeneration: int | None = None


class ClusterPolicyStatus(Spec):
    state: Literal["ignored", "ready", "notReady"]
    namespace: str | None = None
    conditions: list[Condition] | None = None


def enabled(spec: ClusterPolicySpec, section: str) -> bool:
    """Whether ``section`` is on: its ``enabled`` flag, else the upstream default."""
    value = getattr(spec, section)
    flag = getattr(value, "enabled", None) if value is not None else None
    return ENABLED_BY_DEFAULT.get(section, False) if flag is None else bool(flag)


def deprecations(spec: ClusterPolicySpec) -> list[str]:
    """The deprecated fields this spec sets (accepted, ignored): ``["operator.defaultRuntime"]``."""
    found = []
    for path in DEPRECATED:
        node: Any = spec
        for key in path:
            node = getattr(node, key, None)
            if node is None:
                break
        if node is not None:
            found.append(".".join(path))
    return found


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


@functools.cache
def _model_schema() -> dict[str, Any]:
    return model_schema(ClusterPolicySpec)


def parse_spec(data: Any, *, source: str) -> ClusterPolicySpec:
    """A ``spec`` mapping → the model; every bad field in one ``ConfigError`` naming it. Fields
    of upstream's CRD (any release) that the model lacks are type-checked and kept aside as
    "accepted, not used" (``spec.not_used``); a field no release had is refused with the
    nearest known name."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: spec: expected a mapping, got {type(data).__name__}")
    split = sort_spec(data or {}, _model_schema())
    problems = list(split.problems)
    spec = None
    try:
        spec = ClusterPolicySpec.model_validate(split.kept)
    except ValidationError as error:
        problems += [f"spec.{_where(e['loc'])}: {e['msg']}" for e in error.errors()]
    if problems or spec is None:
        raise ConfigError(f"{source}: {'; '.join(problems)}")
    sandbox = bool(isinstance(data, dict) and (data.get("sandboxWorkloads") or {}).get("enabled"))
    spec._not_used = accepted_not_used(split, sandbox_workloads=sandbox)
    return spec


def load_policy(text: str, *, source: str) -> tuple[str, ClusterPolicySpec]:
    """A ClusterPolicy YAML document → (name, spec). The kind and apiVersion must be upstream's."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not YAML: {error}") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a ClusterPolicy object")
    if doc.get("apiVersion") != "nvidia.com/v1" or doc.get("kind") != "ClusterPolicy":
        raise ConfigError(
            f"{source}: apiVersion/kind must be nvidia.com/v1 ClusterPolicy, "
            f"got {doc.get('apiVersion')}/{doc.get('kind')}"
        )
    name = str((doc.get("metadata") or {}).get("name") or "cluster-policy")
    return name, parse_spec(doc.get("spec"), source=source)
