"""What feature discovery knows about a node: plain, immutable records built by ``observe``
from the NVML facade, so the label rules are pure functions of data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuView:
    """One full GPU."""

    index: int
    name: str
    """NVML's name, unsanitised: ``NVIDIA A100-SXM4-40GB``, ``Tesla T4``."""
    memory_mib: int
    """NVML total memory / 2**20 (upstream ``GetTotalMemoryMB``)."""
    compute_capability: tuple[int, int]
    family: str
    """``nvidia.com/gpu.family`` (the facade's ``GpuInfo.architecture``)."""
    mig_capable: bool
    mig_enabled: bool
    """The current (not the pending) MIG mode."""
    pci_class: int | None = None
    """PCI class code without the programming interface (``0x0302`` 3D controller = compute,
    ``0x0300`` VGA = graphics); ``None`` when it could not be read."""


@dataclass(frozen=True)
class MigView:
    """One MIG device, with the attributes upstream reads from ``nvmlDeviceGetAttributes``."""

    parent_index: int
    profile: str
    """The MIG device's name: ``1g.5gb``, ``1g.10gb+me``, ``1c.3g.20gb``."""
    memory_mb: int
    """``MemorySizeMB`` of the GPU instance (NVML's "MB" are MiB)."""
    multiprocessors: int
    gi_slices: int
    ci_slices: int
    copy_engines: int
    decoders: int
    encoders: int
    jpegs: int
    ofas: int


@dataclass(frozen=True)
class VgpuInfo:
    """A vGPU guest's view of its host (from the GPU's PCI vendor capability)."""

    host_driver_version: str
    host_driver_branch: str


@dataclass(frozen=True)
class NodeView:
    """Everything the label rules read about the node's hardware and driver."""

    driver_version: str
    """``nvmlSystemGetDriverVersion``: ``580.159.04``."""
    cuda_driver_version: int
    """``nvmlSystemGetCudaDriverVersion``: 1000 * major + 10 * minor."""
    gpus: tuple[GpuView, ...]
    migs: tuple[MigView, ...] = ()
    """MIG devices of MIG-enabled GPUs, by parent index then NVML slot."""
    vgpu: VgpuInfo | None = None

    def migs_of(self, index: int) -> tuple[MigView, ...]:
        return tuple(m for m in self.migs if m.parent_index == index)
