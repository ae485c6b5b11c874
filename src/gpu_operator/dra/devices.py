"""A full GPU as a ResourceSlice device (``resource.k8s.io/v1``), named and described as
NVIDIA's ``k8s-dra-driver-gpu`` does (``GpuInfo.GetDevice``): name ``gpu-<minor>``; attributes
``type`` = ``gpu``, ``uuid``, ``productName``, ``brand``, ``architecture`` (go-nvlib's words:
``Hopper``, ``Ada Lovelace``), ``cudaComputeCapability``, ``driverVersion`` and
``cudaDriverVersion`` as semantic versions (``9.0.0``, ``580.159.4``, ``13.0.0``: Masterminds'
``semver.MustParse(...).String()``), ``pcieBusID`` (go-nvlib's ``GetPCIBusID``:
``0000:07:00.0``), and ``index`` and ``minor`` (integers, as upstream's earlier releases
published them); capacity ``memory`` in bytes as a binary quantity (``81559Mi``). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpu_operator.gpu.records import GpuInfo, SystemInfo
from gpu_operator.names import dra_gpu_device

GPU_DEVICE_TYPE = "gpu"
_ARCHITECTURES = {"ada-lovelace": "Ada Lovelace"}
_BINARY_SUFFIXES = (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10))


@dataclass(frozen=True)
class NodeGpus:
    """What the plugin read from NVML: the driver's facts, the node's full GPUs and (dynamic
    MIG) its MIG-enabled GPUs."""

    system: SystemInfo
    gpus: tuple[GpuInfo, ...]
    mig_gpus: tuple[GpuInfo, ...] = ()

    def all_gpus(self) -> tuple[GpuInfo, ...]:
        return tuple(sorted((*self.gpus, *self.mig_gpus), key=lambda g: g.index))

    def by_name(self) -> dict[str, GpuInfo]:
        """Every published GPU by device name (a MIG-enabled GPU's whole device too)."""
        return {device_name(g): g for g in self.all_gpus()}


def device_name(gpu: GpuInfo) -> str:
    """Upstream's canonical name of a full GPU: ``gpu-<minor number>``."""
    return dra_gpu_device(gpu.minor_number)


def semver(text: str) -> str:
    """``text`` as Masterminds' loose ``semver.MustParse(text).String()`` prints it: missing
    parts are 0, leading zeros dropped (``580.159.04`` → ``580.159.4``, ``9.0`` → ``9.0.0``)."""
    parts = [int(p) for p in text.strip().lstrip("v").split(".")[:3]]
    if not parts:
        raise ValueError(f"{text!r} is not a version")
    parts += [0] * (3 - len(parts))
    return ".".join(map(str, parts))


def pcie_bus_id(nvml_bus_id: str) -> str:
    """go-nvlib's ``GetPCIBusID``: NVML's ``00000000:07:00.0`` lower-cased, one ``0000`` of the
    eight-digit domain dropped → ``0000:07:00.0``."""
    bus = nvml_bus_id.lower()
    return bus if bus == "0000" else bus.removeprefix("0000")


def architecture_name(family: str) -> str:
    """go-nvlib's ``GetArchitectureAsString`` for our family words (``hopper`` → ``Hopper``)."""
    return _ARCHITECTURES.get(family, family.replace("-", " ").title())


def binary_quantity(value: int) -> str:
    """A byte count as apimachinery's ``NewQuantity(value, BinarySI).String()``: the largest
    binary suffix that divides it exactly (``85520809984`` → ``81559Mi``)."""
    if value <= 0:
        return str(value)
    for suffix, shift in _BINARY_SUFFIXES:
        if value % (1 << shift) == 0:
            return f"{value >> shift}{suffix}"
    return str(value)


def gpu_device(gpu: GpuInfo, system: SystemInfo) -> dict[str, Any]:
    """One full GPU as a ``resource.k8s.io/v1`` ``Device`` (without taints)."""
    major, minor = gpu.compute_capability
    cuda_major, cuda_minor = system.cuda_version

    def text(value: str) -> dict[str, Any]:
        return {"string": value}

    def version(value: str) -> dict[str, Any]:
        return {"version": semver(value)}

    return {
        "name": device_name(gpu),
        "attributes": {
            "type": text(GPU_DEVICE_TYPE),
            "uuid": text(gpu.uuid),
            "productName": text(gpu.name),
            "brand": text(gpu.brand),
            "architecture": text(architecture_name(gpu.architecture)),
            "cudaComputeCapability": version(f"{major}.{minor}"),
            "driverVersion": version(system.driver_version),
            "cudaDriverVersion": version(f"{cuda_major}.{cuda_minor}"),
            "pcieBusID": text(pcie_bus_id(gpu.pci_bus_id)),
            "index": {"int": gpu.index},
            "minor": {"int": gpu.minor_number},
        },
        "capacity": {"memory": {"value": binary_quantity(gpu.memory_total_bytes)}},
    }
