"""The resource model (pure): which extended resources to advertise, with which device IDs.

Input: the node's GPUs and MIG devices as the NVML facade reports them, and the settings.
Output: one ``Resource`` per resource name (``nvidia.com/gpu``, ``nvidia.com/mig-3g.20gb``,
``nvidia.com/gpu.shared``, ...), each with its kubelet-facing devices. The MIG strategies
``none``/``single``/``mixed`` follow upstream exactly, including single's start failures; sharing
adds ``<UUID>::<n>`` replicas. A config file's ``resources`` section and sharing ``rename`` never
reach here: ``load_config`` drops them with a notice, as upstream does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from gpu_operator.deviceplugin.config_v1 import RESOURCE_PREFIX, ReplicatedResources, Resources
from gpu_operator.deviceplugin.settings import PluginSettings
from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInfo, MigDevice

SharingKind = Literal["none", "time-slicing", "mps"]
_CI_QUALIFIED = re.compile(r"^\d+c\.")


@dataclass(frozen=True)
class Device:
    """One device as the kubelet sees it, with what allocation needs to know about it."""

    id: str
    """Kubelet-facing ID: the GPU or MIG UUID, ``<uuid>::<n>`` for a replica."""
    uuid: str
    """The physical device's UUID (no replica suffix): what health and allocation act on."""
    index: str
    """Upstream's index, ``"<gpu>"`` or ``"<gpu>:<mig slot>"``: ``DEVICE_ID_STRATEGY=index``."""
    gpu_index: int
    minor: int
    """Minor number of the (parent) GPU: ``/dev/nvidia<minor>``."""
    numa_node: int | None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    replica: int | None = None

    @property
    def is_mig(self) -> bool:
        return self.gpu_instance_id is not None


@dataclass(frozen=True)
class Resource:
    name: str
    """Fully qualified: ``nvidia.com/gpu``."""
    devices: tuple[Device, ...]
    sharing: SharingKind = "none"
    replicas: int = 1
    fail_requests_greater_than_one: bool = False

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def socket_name(self) -> str:
        """Upstream's socket file name: ``nvidia-gpu.sock``, ``nvidia-mig-1g.5gb.sock``."""
        return f"nvidia-{self.short_name}.sock"

    @property
    def is_mig(self) -> bool:
        return any(d.is_mig for d in self.devices)

    def device(self, device_id: str) -> Device | None:
        return self._by_id.get(device_id)

    @cached_property
    def _by_id(self) -> dict[str, Device]:
        return {d.id: d for d in self.devices}


@dataclass(frozen=True)
class ResourcePlan:
    resources: tuple[Resource, ...]
    warnings: tuple[str, ...] = field(default=())

    def by_name(self, name: str) -> Resource:
        return next(r for r in self.resources if r.name == name)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.resources]


def mig_resource_profile(profile: str) -> str | None:
    """The resource suffix of a MIG profile (``1g.10gb+me`` → ``1g.10gb.me``); ``None`` for a
    CI-qualified profile (``1c.3g.20gb``), which upstream never advertises."""
    if _CI_QUALIFIED.match(profile):
        return None
    return profile.replace("+", ".")


def _name_for(patterns: Sequence[tuple[str, str]], key: str) -> str | None:
    for pattern, name in patterns:
        if fnmatch.fnmatchcase(key, pattern):
            return name
    return None


def gpu_resource_name(resources: Resources, gpu_name: str) -> str | None:
    """The short resource name a full GPU of this model is advertised under (``gpu`` by
    default): ``resources.gpus`` patterns match the name without its ``NVIDIA `` prefix."""
    patterns = [(p.pattern, p.name) for p in resources.gpus] or [("*", "gpu")]
    return _name_for(patterns, gpu_name.removeprefix("NVIDIA ").strip())


def mig_resource_name(resources: Resources, profile: str) -> str | None:
    """The short resource name of a MIG profile (``mig-1g.10gb`` by default, or the first
    ``resources.mig`` pattern that matches); ``None`` when it is not advertised."""
    if resources.mig:
        return _name_for([(p.pattern, p.name) for p in resources.mig], profile)
    suffix = mig_resource_profile(profile)
    return None if suffix is None else f"mig-{suffix}"


def _gpu_device(gpu: GpuInfo) -> Device:
    return Device(
        id=gpu.uuid,
        uuid=gpu.uuid,
        index=str(gpu.index),
        gpu_index=gpu.index,
        minor=gpu.minor_number,
        numa_node=gpu.numa_node,
    )


def _mig_device(gpu: GpuInfo, mig: MigDevice) -> Device:
    return Device(
        id=mig.uuid,
        uuid=mig.uuid,
        index=f"{gpu.index}:{mig.index}",
        gpu_index=gpu.index,
        minor=gpu.minor_number,
        numa_node=gpu.numa_node,
        gpu_instance_id=mig.gpu_instance_id,
        compute_instance_id=mig.compute_instance_id,
    )


def _check_single(gpus: Sequence[GpuInfo], migs: Mapping[int, Sequence[MigDevice]]) -> None:
    """Upstream's start failures for ``single``: the plugin refuses to start on such a node."""
    modes = {bool(g.mig_mode and g.mig_mode.enabled) for g in gpus}
    if len(modes) > 1:
        raise ConfigError(
            "invalid MIG configuration for mig-strategy=single: "
            "all devices on the node must be configured with the same migEnabled value"
        )
    for gpu in gpus:
        if not migs.get(gpu.index):
            raise ConfigError(
                "invalid MIG configuration for mig-strategy=single: at least one device with "
                f"migEnabled=true was not configured correctly: device {gpu.index} has no MIG "
                "devices configured"
            )
    kinds = {
        (m.profile, m.memory_total_bytes, m.multiprocessors) for g in gpus for m in migs[g.index]
    }
    if len(kinds) > 1:
        raise ConfigError(
            "invalid MIG configuration for mig-strategy=single: "
            "more than one MIG device type present on node"
        )


def _base_resources(
    gpus: Sequence[GpuInfo],
    migs: Mapping[int, Sequence[MigDevice]],
    settings: PluginSettings,
    warnings: list[str],
) -> dict[str, list[Device]]:
    resources = settings.resources
    out: dict[str, list[Device]] = {}

    def add(name: str | None, device: Device) -> None:
        if name is not None:
            out.setdefault(f"{RESOURCE_PREFIX}/{name}", []).append(device)

    strategy = settings.mig_strategy
    mig_gpus = [g for g in gpus if g.mig_mode is not None and g.mig_mode.enabled]
    if strategy == "single" and mig_gpus:
        _check_single(gpus, migs)
    for gpu in gpus:
        mig_enabled = gpu in mig_gpus
        if strategy == "none" or not mig_enabled:
            add(gpu_resource_name(resources, gpu.name), _gpu_device(gpu))
            continue
        if not migs.get(gpu.index):
            warnings.append(f"GPU {gpu.index} has MIG enabled but no MIG devices")
            continue
        for mig in migs[gpu.index]:
            profile = mig_resource_profile(mig.profile)
            if profile is None:
                if strategy == "single":
                    raise ConfigError(
                        "invalid MIG configuration for mig-strategy=single: "
                        f"unsupported MIG device found: {mig.profile} on GPU {gpu.index}"
                    )
                warnings.append(f"GPU {gpu.index}: MIG device {mig.profile} is not advertised")
                continue
            if strategy == "single":
                add(gpu_resource_name(resources, gpu.name), _mig_device(gpu, mig))
            else:
                add(mig_resource_name(resources, mig.profile), _mig_device(gpu, mig))
    return out


def _sharing(settings: PluginSettings) -> tuple[SharingKind, ReplicatedResources | None]:
    if settings.sharing.mps is not None:
        return "mps", settings.sharing.mps
    if settings.sharing.timeSlicing is not None:
        return "time-slicing", settings.sharing.timeSlicing
    return "none", None


def build_resources(
    gpus: Sequence[GpuInfo],
    migs: Mapping[int, Sequence[MigDevice]],
    settings: PluginSettings,
) -> ResourcePlan:
    """The resources to advertise; ``ConfigError`` where upstream refuses to start."""
    warnings: list[str] = []
    base = _base_resources(gpus, migs, settings, warnings)
    kind, shared = _sharing(settings)
    out: list[Resource] = []
    for name, devices in base.items():
        rule = next((r for r in shared.resources if r.name == name), None) if shared else None
        if rule is None or shared is None:
            out.append(Resource(name=name, devices=tuple(devices)))
            continue
        if kind == "mps" and any(d.is_mig for d in devices):
            raise ConfigError(f"sharing.mps: {name}: MPS sharing is only for full GPUs, not MIG")
        new_name = name
        if rule.rename:
            new_name = rule.rename if "/" in rule.rename else f"{RESOURCE_PREFIX}/{rule.rename}"
        elif shared.renameByDefault:
            new_name = f"{name}.shared"
        replicas = tuple(
            replace(d, id=f"{d.uuid}::{n}", replica=n)
            for d in devices
            for n in range(rule.replicas)
        )
        fail = shared.failRequestsGreaterThanOne
        out.append(
            Resource(
                name=new_name,
                devices=replicas,
                sharing=kind,
                replicas=rule.replicas,
                fail_requests_greater_than_one=(kind == "mps") if fail is None else fail,
            )
        )
    for rule in shared.resources if shared else ():
        if rule.name not in base:
            warnings.append(f"sharing: {rule.name} is not a resource on this node")
    names = [r.name for r in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"resources: two sets of devices would be advertised as {clash[0]}")
    too_long = [n for n in names if len(n) > 63]
    if too_long:
        raise ConfigError(f"resources: {too_long[0]} is longer than 63 characters")
    return ResourcePlan(resources=tuple(out), warnings=tuple(warnings))
