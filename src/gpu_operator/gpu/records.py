"""Immutable records that the NVML facade returns: plain data, no handles, no I/O.

Every operand reasons over these records; none of them holds an NVML handle, so they can be
compared, hashed, logged and serialised freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MigModeValue(StrEnum):
    """One side (current or pending) of a GPU's MIG mode, spelled as nvidia-smi prints it."""

    DISABLED = "disabled"
    ENABLED = "enabled"


@dataclass(frozen=True)
class MigMode:
    """A GPU's MIG mode: a change is pending while ``current != pending``."""

    current: MigModeValue
    pending: MigModeValue

    @property
    def enabled(self) -> bool:
        return self.current is MigModeValue.ENABLED

    @property
    def change_pending(self) -> bool:
        return self.current is not self.pending


@dataclass(frozen=True)
class SystemInfo:
    """What the node's driver reports about itself."""

    driver_version: str
    nvml_version: str
    cuda_driver_version: int
    """CUDA driver API version as NVML encodes it: 1000 * major + 10 * minor (13000 = 13.0)."""

    @property
    def cuda_version(self) -> tuple[int, int]:
        return self.cuda_driver_version // 1000, (self.cuda_driver_version % 1000) // 10


@dataclass(frozen=True)
class Placement:
    """A range of memory slices (GPU instances) or compute slices (compute instances)."""

    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size

    def overlaps(self, other: Placement) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class GpuInfo:
    """Static facts about one full GPU."""

    index: int
    uuid: str
    name: str
    pci_bus_id: str
    pci_device_id: int
    """``0xDDDDVVVV``: device id in the high 16 bits, vendor id (0x10DE) in the low 16 bits."""
    pci_subsystem_id: int
    minor_number: int
    memory_total_bytes: int
    compute_capability: tuple[int, int]
    architecture: str
    """Family name as feature discovery labels it: ``turing``, ``ampere``, ``ada-lovelace``, ..."""
    numa_node: int | None
    brand: str
    serial: str | None
    vbios_version: str | None
    mig_capable: bool
    mig_mode: MigMode | None
    """``None`` when the GPU is not MIG capable."""
    pci_class: int | None = None
    """PCI base and sub class, e.g. 0x0302 (3D controller: compute), 0x0300 (VGA: graphics)."""

    @property
    def memory_mib(self) -> int:
        return self.memory_total_bytes // (1024 * 1024)

    @property
    def pci_device_id_hex(self) -> str:
        """The id as mig-parted's ``device-filter`` spells it: ``0x233510DE``."""
        return f"0x{self.pci_device_id:08X}"

    @property
    def pci_subsystem_id_hex(self) -> str:
        return f"0x{self.pci_subsystem_id:08X}"


@dataclass(frozen=True)
class GpuInstanceProfile:
    """A GPU-instance profile as NVML reports it for one GPU, with its derived name."""

    nvml_profile: int
    """The ``NVML_GPU_INSTANCE_PROFILE_*`` enum value that was queried."""
    id: int
    """The profile id (what nvidia-smi prints, what the create calls take); device specific."""
    name: str
    slice_count: int
    """Compute (SM) slices; the memory slices are ``placements[*].size``."""
    instance_count: int
    memory_mib: int
    """NVML's ``memorySizeMB`` (MiB, despite the name)."""
    multiprocessors: int
    copy_engines: int
    decoders: int
    encoders: int
    jpegs: int
    ofas: int
    placements: tuple[Placement, ...]

    @property
    def memory_slices(self) -> int:
        return self.placements[0].size if self.placements else 0


@dataclass(frozen=True)
class ComputeInstanceProfile:
    """A compute-instance profile available inside GPU instances of one GI profile."""

    nvml_profile: int
    id: int
    name: str
    """Full name including the GI part, e.g. ``1c.3g.20gb`` or ``3g.20gb`` for the full CI."""
    slice_count: int
    instance_count: int
    multiprocessors: int
    placements: tuple[Placement, ...]


@dataclass(frozen=True)
class ComputeInstance:
    gpu_instance_id: int
    id: int
    profile_id: int
    name: str
    placement: Placement
    multiprocessors: int


@dataclass(frozen=True)
class GpuInstance:
    """A GPU instance that exists on a GPU, with the compute instances inside it."""

    gpu_index: int
    id: int
    profile_id: int
    profile_name: str
    placement: Placement
    compute_instances: tuple[ComputeInstance, ...] = ()


@dataclass(frozen=True)
class MigDevice:
    """One MIG device: what CUDA and Kubernetes consume (a CI plus its parent GI)."""

    uuid: str
    parent_index: int
    parent_uuid: str
    index: int
    """Position among the parent's MIG device handles (``nvmlDeviceGetMigDeviceHandleByIndex``)."""
    gpu_instance_id: int
    compute_instance_id: int
    profile: str
    """Name of the MIG device: the CI-qualified name when the CI is smaller than its GI."""
    gi_profile_id: int
    placement: Placement
    memory_total_bytes: int
    multiprocessors: int

    @property
    def memory_mib(self) -> int:
        return self.memory_total_bytes // (1024 * 1024)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    used_memory_bytes: int | None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class EccCounts:
    volatile_corrected: int | None = None
    volatile_uncorrected: int | None = None
    aggregate_corrected: int | None = None
    aggregate_uncorrected: int | None = None


@dataclass(frozen=True)
class RemappedRows:
    correctable: int
    uncorrectable: int
    pending: bool
    failure: bool


@dataclass(frozen=True)
class Telemetry:
    """One sample of a GPU's (or a MIG device's) counters; ``None`` means "not supported here".

    Units are NVML's, converted only where NVML mixes them: clocks MHz, temperatures °C, power
    mW, energy mJ since driver load, utilisation %, memory bytes, NVLink KiB counters.
    """

    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    gpu_temp_c: int | None = None
    memory_temp_c: int | None = None
    power_mw: int | None = None
    energy_mj: int | None = None
    gpu_util_pct: int | None = None
    memory_util_pct: int | None = None
    encoder_util_pct: int | None = None
    decoder_util_pct: int | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    pcie_replay_count: int | None = None
    remapped_rows: RemappedRows | None = None
    ecc: EccCounts | None = None
    nvlink_rx_kib: int | None = None
    nvlink_tx_kib: int | None = None
    clock_event_reasons: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """Counters that failed with something other than "not supported": name → NVML error text."""


@dataclass(frozen=True)
class GpmSample:
    """Profiling metrics from NVML GPM (Hopper and newer) over one interval, as 0–100 percents
    or per-second rates, keyed by ``NVML_GPM_METRIC_*`` id."""

    values: dict[int, float]
    interval_s: float


class EventKind(StrEnum):
    XID = "xid"
    SINGLE_BIT_ECC = "single-bit-ecc"
    DOUBLE_BIT_ECC = "double-bit-ecc"
    OTHER = "other"


@dataclass(frozen=True)
class GpuEvent:
    """An NVML event: for XIDs ``data`` is the XID code."""

    gpu_index: int
    gpu_uuid: str
    kind: EventKind
    data: int
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class Topology:
    """How two GPUs are connected, for topology-aware allocation."""

    common_ancestor: str
    """``internal`` (same GPU), ``single``, ``multiple``, ``hostbridge``, ``node``, ``system``
    (PCIe tree), or ``unknown`` when the driver does not say."""
    nvlinks: int
    """Active NVLinks that join the two GPUs directly or through NVSwitches."""
    via_nvswitch: bool
