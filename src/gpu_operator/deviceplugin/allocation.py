"""Allocation (pure): what one container gets for the device IDs the kubelet chose.

``allocate(resource, ids, settings, nodes)`` validates the IDs and the sharing rules, then
builds the response for every configured device-list strategy (``envvar``, ``volume-mounts``,
``cdi-annotations``, ``cdi-cri``) with the ``uuid`` or ``index`` device-id strategy, and the
device nodes of ``PASS_DEVICE_SPECS``. Plain data in and out; the servicer turns it into protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpu_operator.deviceplugin.resources import Device, Resource
from gpu_operator.deviceplugin.settings import PluginSettings
from gpu_operator.errors import GpuOperatorError

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
VOLUME_MOUNT_ROOT = "/var/run/nvidia-container-devices"
CDI_VENDOR = "k8s.device-plugin.nvidia.com"
CDI_ANNOTATION_KEY = "nvidia-device-plugin"


class AllocationError(GpuOperatorError):
    """The kubelet asked for something the plugin must refuse (the pod fails admission)."""


@dataclass(frozen=True)
class MountSpec:
    container_path: str
    host_path: str
    read_only: bool = False


@dataclass(frozen=True)
class DeviceNode:
    container_path: str
    host_path: str
    permissions: str = "rw"


@dataclass(frozen=True)
class DeviceNodeTable:
    """The device nodes that exist on this node, resolved once at start (``devnodes.py``)."""

    control: tuple[DeviceNode, ...] = ()
    """Those of ``nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``, ``nvidia-modeset`` present."""
    per_device: Mapping[str, tuple[DeviceNode, ...]] = field(default_factory=dict)
    """Physical UUID → its nodes: ``/dev/nvidia<minor>``, plus the MIG capability nodes."""


@dataclass(frozen=True)
class ContainerAllocation:
    envs: dict[str, str] = field(default_factory=dict)
    mounts: tuple[MountSpec, ...] = ()
    devices: tuple[DeviceNode, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    cdi_devices: tuple[str, ...] = ()


def validate_request(resource: Resource, ids: Sequence[str]) -> list[Device]:
    """The requested devices, unknown IDs and oversize shared requests refused; replicas of one
    physical device collapse into one."""
    unknown = [i for i in ids if resource.device(i) is None]
    if unknown:
        raise AllocationError(
            f"invalid allocation request for {resource.name!r}: unknown device: {unknown[0]}"
        )
    if resource.fail_requests_greater_than_one and len(ids) > 1 and any("::" in i for i in ids):
        raise AllocationError(
            f"invalid allocation request for {resource.name!r}: "
            "maximum request size for shared resources is 1"
        )
    seen: dict[str, Device] = {}
    for device_id in ids:
        device = resource.device(device_id)
        assert device is not None
        seen.setdefault(device.uuid, device)
    return list(seen.values())


def _visible_id(device: Device, settings: PluginSettings) -> str:
    return device.index if settings.device_id_strategy == "index" else device.uuid


def allocate(
    resource: Resource,
    ids: Sequence[str],
    settings: PluginSettings,
    nodes: DeviceNodeTable | None = None,
    *,
    annotation_id: str = "0",
) -> ContainerAllocation:
    """The response for one container; ``annotation_id`` makes the CDI annotation key unique
    (upstream: a random UUID per response)."""
    devices = validate_request(resource, ids)
    visible = [_visible_id(d, settings) for d in devices]
    strategies = settings.device_list_strategy
    envs: dict[str, str] = {}
    mounts: list[MountSpec] = []
    annotations: dict[str, str] = {}
    cdi: list[str] = []
    channels = [str(c) for c in settings.imex_channel_ids]

    if "envvar" in strategies:
        envs[VISIBLE_DEVICES] = ",".join(visible)
        if channels:
            envs["NVIDIA_IMEX_CHANNELS"] = ",".join(channels)
    if "volume-mounts" in strategies:
        envs[VISIBLE_DEVICES] = VOLUME_MOUNT_ROOT
        mounts += [MountSpec(f"{VOLUME_MOUNT_ROOT}/{v}", "/dev/null") for v in visible]
        mounts += [MountSpec(f"{VOLUME_MOUNT_ROOT}/imex/{c}", "/dev/null") for c in channels]
    uses_cdi = "cdi-annotations" in strategies or "cdi-cri" in strategies
    if uses_cdi:
        names = [f"{CDI_VENDOR}/gpu={v}" for v in visible]
        names += [f"{CDI_VENDOR}/imex-channel={c}" for c in channels]
        for enabled, mode in (
            (settings.gdrcopy_enabled, "gdrcopy"),
            (settings.gds_enabled, "gds"),
            (settings.mofed_enabled, "mofed"),
        ):
            if enabled:
                names.append(f"{CDI_VENDOR}/{mode}=all")
        if "cdi-annotations" in strategies:
            key = f"{settings.cdi_annotation_prefix}{CDI_ANNOTATION_KEY}_{annotation_id}"
            annotations[key] = ",".join(names)
        if "cdi-cri" in strategies:
            cdi = names
    if envs:
        for enabled, var in (
            (settings.gdrcopy_enabled, "NVIDIA_GDRCOPY"),
            (settings.gds_enabled, "NVIDIA_GDS"),
            (settings.mofed_enabled, "NVIDIA_MOFED"),
        ):
            if enabled:
                envs[var] = "enabled"
    if resource.sharing == "mps" and settings.mps_root:
        root = settings.mps_root.rstrip("/")
        pipe = f"/mps/{resource.name}/pipe"
        envs["CUDA_MPS_PIPE_DIRECTORY"] = pipe
        mounts.append(MountSpec(pipe, f"{root}/{resource.name}/pipe"))
        mounts.append(MountSpec("/dev/shm", f"{root}/shm"))
    device_nodes: list[DeviceNode] = []
    if settings.pass_device_specs and nodes is not None:
        device_nodes = list(nodes.control)
        for device in devices:
            for node in nodes.per_device.get(device.uuid, ()):
                if node not in device_nodes:
                    device_nodes.append(node)
    return ContainerAllocation(
        envs=envs,
        mounts=tuple(mounts),
        devices=tuple(device_nodes),
        annotations=annotations,
        cdi_devices=tuple(cdi),
    )
