"""The full label set (pure): every ``nvidia.com/`` label upstream gpu-feature-discovery writes,
as a function of the node view, the device-plugin config, the machine type and a timestamp.

Labelers each return a dict; ``build_labels`` merges them in this order, later ones winning
on a shared key (only the MIG ``single`` labels override earlier keys, as upstream):

1. ``gpu.machine``                      the sanitised machine type (``unknown`` if unreadable)
2. ``cuda.driver.*``, ``cuda.driver-version.*``, ``cuda.runtime.*``, ``cuda.runtime-version.*``
3. ``mig.capable``
4. ``mps.capable``
5. ``gpu.mode``
6. ``vgpu.present`` (+ ``vgpu.host-driver-version`` / ``-branch`` in a vGPU guest)
7. ``gpu.*`` of the primary model (``resource_labels`` says which model that is)
8. ``mig.strategy`` and the ``single`` / ``mixed`` labels
9. ours, only with several models: ``gpu-operator.models``, ``gpu-operator.model.<n>.*``
10. ``gfd.timestamp`` (omitted with ``--no-timestamp``)

A node without GPUs gets only the timestamp (upstream then warns "No labels generated from any
source").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_operator.deviceplugin.config_v1 import RESOURCE_PREFIX, MigStrategy, Resources, Sharing
from gpu_operator.discovery.resource_labels import (
    Labels,
    SharingRules,
    full_gpu_labels,
    model_groups,
    per_model_labels,
    sanitise,
    strategy_labels,
)
from gpu_operator.discovery.view import GpuView, NodeView
from gpu_operator.errors import ConfigError, GpuError

P = f"{RESOURCE_PREFIX}/"
_COMPUTE_CLASS, _GRAPHICS_CLASS = 0x0302, 0x0300


@dataclass(frozen=True)
class LabelInputs:
    """Everything besides the hardware that decides the labels."""

    mig_strategy: MigStrategy = "none"
    sharing: Sharing = field(default_factory=Sharing)
    resources: Resources = field(default_factory=Resources)
    machine_type: str | None = None
    """Raw content of the machine-type file; ``None`` when it could not be read."""
    timestamp: int | None = None
    """Unix seconds of this labelling run; ``None`` with ``--no-timestamp``."""


@dataclass(frozen=True)
class LabelSet:
    labels: Labels
    warnings: tuple[str, ...] = ()


def machine_labels(machine_type: str | None) -> Labels:
    value = sanitise(machine_type) if machine_type is not None else ""
    return {f"{P}gpu.machine": value or "unknown"}


def version_labels(driver_version: str, cuda_driver_version: int) -> Labels:
    """Driver ``X.Y[.Z]`` and the driver's CUDA version, under the deprecated and new names."""
    parts = driver_version.strip().split(".")
    if not 2 <= len(parts) <= 3:
        raise GpuError(f'driver version "{driver_version}" does not match the format "X.Y[.Z]"')
    major, minor = parts[0], parts[1]
    rev = parts[2] if len(parts) == 3 else ""
    cuda_major, cuda_minor = cuda_driver_version // 1000, cuda_driver_version % 1000 // 10
    return {
        f"{P}cuda.driver.major": major,
        f"{P}cuda.driver.minor": minor,
        f"{P}cuda.driver.rev": rev,
        f"{P}cuda.driver-version.major": major,
        f"{P}cuda.driver-version.minor": minor,
        f"{P}cuda.driver-version.revision": rev,
        f"{P}cuda.driver-version.full": driver_version.strip(),
        f"{P}cuda.runtime.major": str(cuda_major),
        f"{P}cuda.runtime.minor": str(cuda_minor),
        f"{P}cuda.runtime-version.major": str(cuda_major),
        f"{P}cuda.runtime-version.minor": str(cuda_minor),
        f"{P}cuda.runtime-version.full": f"{cuda_major}.{cuda_minor}",
    }


def mig_capable_labels(gpus: tuple[GpuView, ...]) -> Labels:
    return {f"{P}mig.capable": str(any(g.mig_capable for g in gpus)).lower()}


def mps_labels(gpus: tuple[GpuView, ...], sharing: SharingRules) -> Labels:
    """``true`` only when the config shares by MPS, which MIG-enabled GPUs can't do."""
    if sharing.strategy != "mps":
        return {f"{P}mps.capable": "false"}
    mig = [g.index for g in gpus if g.mig_enabled]
    if mig:
        raise ConfigError(
            f"sharing.mps: MPS sharing can't be used with MIG-enabled GPUs (GPU {mig[0]} has MIG "
            "enabled); use time-slicing, or disable MIG"
        )
    return {f"{P}mps.capable": "true"}


def mode_labels(gpus: tuple[GpuView, ...]) -> Labels:
    """``compute`` / ``graphics`` when every GPU has that PCI class, else ``unknown``."""
    classes = {g.pci_class for g in gpus}
    mode = "unknown"
    if classes == {_COMPUTE_CLASS}:
        mode = "compute"
    elif classes == {_GRAPHICS_CLASS}:
        mode = "graphics"
    return {f"{P}gpu.mode": mode}


def vgpu_labels(view: NodeView) -> Labels:
    if view.vgpu is None:
        return {f"{P}vgpu.present": "false"}
    return {
        f"{P}vgpu.present": "true",
        f"{P}vgpu.host-driver-version": view.vgpu.host_driver_version,
        f"{P}vgpu.host-driver-branch": view.vgpu.host_driver_branch,
    }


def timestamp_labels(timestamp: int | None) -> Labels:
    return {} if timestamp is None else {f"{P}gfd.timestamp": str(timestamp)}


def build_labels(view: NodeView, inputs: LabelInputs) -> LabelSet:
    """The node's labels, merged in the order of this module's docstring."""
    warnings: list[str] = []
    labels: Labels = {}
    if view.gpus:
        sharing = SharingRules.of(inputs.sharing)
        groups = model_groups(view.gpus)
        if len(groups) > 1:
            names = ", ".join(f"{g.name} x{g.count}" for g in groups)
            warnings.append(
                f"Multiple device types detected: {names}; nvidia.com/gpu.* describe "
                f"{groups[0].name} (most GPUs, ties by name)"
            )
        for part in (
            machine_labels(inputs.machine_type),
            version_labels(view.driver_version, view.cuda_driver_version),
            mig_capable_labels(view.gpus),
            mps_labels(view.gpus, sharing),
            mode_labels(view.gpus),
            vgpu_labels(view),
            full_gpu_labels(groups[0], sharing, inputs.resources),
            strategy_labels(view, inputs.mig_strategy, sharing, inputs.resources, warnings),
            per_model_labels(groups),
        ):
            labels.update(part)
    labels.update(timestamp_labels(inputs.timestamp))
    if len(labels) <= 1:
        warnings.append("No labels generated from any source")
    return LabelSet(labels, tuple(warnings))
