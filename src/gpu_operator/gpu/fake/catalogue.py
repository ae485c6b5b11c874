"""The catalogue of GPU models the simulator can be: real facts, one record per model.

Sources: ``shared/reference/mig.md`` §1.4–§1.6 (per-model MIG tables from the MIG user guide and
``nvidia-smi mig -lgip/-lgipp`` outputs) and the read-out of a real H200 (driver 580.159.04),
which is exact. Where the reference gives memory in GiB with two decimals, ``memory_mib`` is that
figure × 1024; the derived profile names are checked against the reference names by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

# NVML_GPU_INSTANCE_PROFILE_* enum values (pynvml spells them the same).
GI_1_SLICE = 0x0
GI_2_SLICE = 0x1
GI_3_SLICE = 0x2
GI_4_SLICE = 0x3
GI_7_SLICE = 0x4
GI_1_SLICE_REV1 = 0x7
GI_2_SLICE_REV1 = 0x8
GI_1_SLICE_REV2 = 0x9

# NVML_COMPUTE_INSTANCE_PROFILE_* enum values; for CIs the profile id equals the enum.
CI_PROFILE_BY_SLICES = {1: 0x0, 2: 0x1, 3: 0x2, 4: 0x3, 7: 0x4}


@dataclass(frozen=True)
class GiProfileSpec:
    """One GPU-instance profile of a model, as ``nvmlDeviceGetGpuInstanceProfileInfo`` has it."""

    nvml_profile: int
    id: int
    slices: int
    """Compute slices (``sliceCount``)."""
    instances: int
    memory_mib: int
    sms: int
    copy_engines: int
    decoders: int
    jpegs: int
    ofas: int
    starts: tuple[int, ...]
    size: int
    """Memory slices one instance occupies (the placement size)."""
    encoders: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """Facts about one GPU model."""

    key: str
    name: str
    """What ``nvmlDeviceGetName`` returns."""
    pci_device_id: int
    pci_subsystem_id: int
    memory_mib: int
    sms: int
    compute_capability: tuple[int, int]
    architecture: int
    """``NVML_DEVICE_ARCH_*``: 6 Turing, 7 Ampere, 8 Ada, 9 Hopper."""
    brand: int
    """``NVML_BRAND_*``: 2 Tesla, 14 NVIDIA."""
    power_limit_w: int
    idle_power_w: int
    max_sm_clock_mhz: int
    idle_sm_clock_mhz: int
    memory_clock_mhz: int
    vbios: str
    memory_slices: int = 0
    """8 on the 7-way MIG parts, 4 on A30, 0 when the model has no MIG."""
    gi_profiles: tuple[GiProfileSpec, ...] = ()
    has_memory_temp: bool = True
    """HBM parts report ``NVML_FI_DEV_MEMORY_TEMP``; GDDR parts do not."""
    has_remapped_rows: bool = True
    reserved_bytes: int | None = None
    """Memory the driver keeps for itself, as the card reports it (``nvmlDeviceGetMemoryInfo_v2``
    ``reserved``; the v1 call counts it as used). ``None`` where no card was measured: 0.4 % of
    the memory, about what the measured Hopper cards keep."""

    def reserved_memory_bytes(self) -> int:
        if self.reserved_bytes is not None:
            return self.reserved_bytes
        return self.memory_mib * 1024 * 1024 * 4 // 1000

    @property
    def mig_capable(self) -> bool:
        return bool(self.gi_profiles)

    @property
    def resets_for_mig(self) -> bool:
        """Ampere needs a GPU reset to change MIG mode; Hopper and newer toggle when idle."""
        return self.architecture < 9

    @property
    def compute_slices(self) -> int:
        return max((p.slices for p in self.gi_profiles), default=0)

    def full_profile(self) -> GiProfileSpec:
        """The profile covering the whole GPU (7g, or 4g on A30): the engine budget of a GPU."""
        return max(self.gi_profiles, key=lambda p: (p.size, p.slices))


def _seven_way(
    *,
    mem_1g: int,
    mem_2slice: int,
    mem_4slice: int,
    mem_7g: int,
    sms: tuple[int, int, int, int, int, int],
    ce_7g: int,
    dec: tuple[int, int, int, int, int, int],
    jpg: tuple[int, int, int, int, int, int],
    ofa_7g: int = 1,
    with_1g_rev2: bool = True,
) -> tuple[GiProfileSpec, ...]:
    """The 7-way geometry shared by A100, H100, H200 and GH200: ids 19/20/15/14/9/5/0.

    ``sms``, ``dec`` and ``jpg`` are given for (1g, 1g.REV2, 2g, 3g, 4g, 7g); the ``+me`` profile
    has the base 1g's counts plus one decoder (when the base has none), one JPEG and one OFA.
    """
    s1, s1r2, s2, s3, s4, s7 = sms
    d1, d1r2, d2, d3, d4, d7 = dec
    j1, j1r2, j2, j3, j4, j7 = jpg
    profiles = [
        GiProfileSpec(GI_1_SLICE, 19, 1, 7, mem_1g, s1, 1, d1, j1, 0, tuple(range(7)), 1),
        GiProfileSpec(
            GI_1_SLICE_REV1, 20, 1, 1, mem_1g, s1, 1, max(d1, 1), 1, 1, tuple(range(7)), 1
        ),
    ]
    if with_1g_rev2:
        profiles.append(
            GiProfileSpec(
                GI_1_SLICE_REV2, 15, 1, 4, mem_2slice, s1r2, 1, d1r2, j1r2, 0, (0, 2, 4, 6), 2
            )
        )
    profiles += [
        GiProfileSpec(GI_2_SLICE, 14, 2, 3, mem_2slice, s2, 2, d2, j2, 0, (0, 2, 4), 2),
        GiProfileSpec(GI_3_SLICE, 9, 3, 2, mem_4slice, s3, 3, d3, j3, 0, (0, 4), 4),
        GiProfileSpec(GI_4_SLICE, 5, 4, 1, mem_4slice, s4, 4, d4, j4, 0, (0,), 4),
        GiProfileSpec(GI_7_SLICE, 0, 7, 1, mem_7g, s7, ce_7g, d7, j7, ofa_7g, (0,), 8),
    ]
    return tuple(profiles)


_A100_SMS = (14, 14, 28, 42, 56, 98)
_A100_JPG = (0, 0, 0, 0, 0, 1)
_HOPPER_SMS = (16, 26, 32, 60, 64, 132)
_HOPPER_DEC = (1, 1, 2, 3, 4, 7)

MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec(
            key="A100-SXM4-40GB",
            name="NVIDIA A100-SXM4-40GB",
            pci_device_id=0x20B010DE,
            pci_subsystem_id=0x134F10DE,
            memory_mib=40960,
            sms=108,
            compute_capability=(8, 0),
            architecture=7,
            brand=14,
            power_limit_w=400,
            idle_power_w=55,
            max_sm_clock_mhz=1410,
            idle_sm_clock_mhz=210,
            memory_clock_mhz=1215,
            vbios="92.00.19.00.01",
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=4864,
                mem_2slice=9984,
                mem_4slice=20096,
                mem_7g=40448,
                sms=_A100_SMS,
                ce_7g=7,
                dec=(0, 1, 1, 2, 2, 5),
                jpg=_A100_JPG,
            ),
        ),
        ModelSpec(
            key="A100-SXM4-80GB",
            name="NVIDIA A100-SXM4-80GB",
            pci_device_id=0x20B210DE,
            pci_subsystem_id=0x147F10DE,
            memory_mib=81920,
            sms=108,
            compute_capability=(8, 0),
            architecture=7,
            brand=14,
            power_limit_w=400,
            idle_power_w=60,
            max_sm_clock_mhz=1410,
            idle_sm_clock_mhz=210,
            memory_clock_mhz=1593,
            vbios="92.00.36.00.02",
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=9728,
                mem_2slice=19968,
                mem_4slice=40192,
                mem_7g=81152,
                sms=_A100_SMS,
                ce_7g=7,
                dec=(0, 1, 1, 2, 2, 5),
                jpg=_A100_JPG,
            ),
        ),
        ModelSpec(
            key="A30-24GB",
            name="NVIDIA A30",
            pci_device_id=0x20B710DE,
            pci_subsystem_id=0x153210DE,
            memory_mib=24576,
            sms=56,
            compute_capability=(8, 0),
            architecture=7,
            brand=14,
            power_limit_w=165,
            idle_power_w=30,
            max_sm_clock_mhz=1440,
            idle_sm_clock_mhz=210,
            memory_clock_mhz=1215,
            vbios="92.00.66.00.01",
            memory_slices=4,
            gi_profiles=(
                GiProfileSpec(GI_1_SLICE, 14, 1, 4, 5952, 14, 1, 1, 0, 0, (0, 1, 2, 3), 1),
                GiProfileSpec(GI_1_SLICE_REV1, 21, 1, 1, 5952, 14, 1, 1, 1, 1, (0, 1, 2, 3), 1),
                GiProfileSpec(GI_2_SLICE, 5, 2, 2, 11968, 28, 2, 2, 0, 0, (0, 2), 2),
                GiProfileSpec(GI_2_SLICE_REV1, 6, 2, 1, 11968, 28, 2, 2, 1, 1, (0, 2), 2),
                GiProfileSpec(GI_4_SLICE, 0, 4, 1, 24000, 56, 4, 4, 1, 1, (0,), 4),
            ),
        ),
        ModelSpec(
            key="H100-SXM5-80GB",
            name="NVIDIA H100 80GB HBM3",
            pci_device_id=0x233010DE,
            pci_subsystem_id=0x16C110DE,
            memory_mib=81559,
            sms=132,
            compute_capability=(9, 0),
            architecture=9,
            brand=14,
            power_limit_w=700,
            idle_power_w=70,
            max_sm_clock_mhz=1980,
            idle_sm_clock_mhz=345,
            memory_clock_mhz=2619,
            vbios="96.00.30.00.01",
            reserved_bytes=480 * 1024 * 1024,  # the device machine's H100, driver 580.159.04
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=9984,
                mem_2slice=20096,
                mem_4slice=40448,
                mem_7g=81152,
                sms=_HOPPER_SMS,
                ce_7g=8,
                dec=_HOPPER_DEC,
                jpg=_HOPPER_DEC,
            ),
        ),
        ModelSpec(
            key="H100-NVL-94GB",
            name="NVIDIA H100 NVL",
            pci_device_id=0x232110DE,
            pci_subsystem_id=0x183910DE,
            memory_mib=95830,
            sms=132,
            compute_capability=(9, 0),
            architecture=9,
            brand=14,
            power_limit_w=400,
            idle_power_w=60,
            max_sm_clock_mhz=1785,
            idle_sm_clock_mhz=345,
            memory_clock_mhz=2619,
            vbios="96.00.74.00.0F",
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=11008,
                mem_2slice=22144,
                mem_4slice=47488,
                mem_7g=95360,
                sms=_HOPPER_SMS,
                ce_7g=8,
                dec=_HOPPER_DEC,
                jpg=_HOPPER_DEC,
            ),
        ),
        ModelSpec(
            key="H200-141GB",
            name="NVIDIA H200",
            pci_device_id=0x233510DE,
            pci_subsystem_id=0x18BF10DE,
            memory_mib=143771,
            sms=132,
            compute_capability=(9, 0),
            architecture=9,
            brand=14,
            power_limit_w=700,
            idle_power_w=79,
            max_sm_clock_mhz=1980,
            idle_sm_clock_mhz=345,  # the card at idle, driver 580.159.04 (900 MHz while busy)
            memory_clock_mhz=3201,
            vbios="96.00.A5.00.1A",
            reserved_bytes=644_939_776,  # 615 MiB: the H200 read-out's used memory at idle
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=16384,
                mem_2slice=33280,
                mem_4slice=71424,
                mem_7g=143360,
                sms=_HOPPER_SMS,
                ce_7g=8,
                dec=_HOPPER_DEC,
                jpg=_HOPPER_DEC,
            ),
        ),
        ModelSpec(
            key="GH200-96GB",
            name="NVIDIA GH200 480GB",
            pci_device_id=0x234210DE,
            pci_subsystem_id=0x16EB10DE,
            memory_mib=97871,
            sms=132,
            compute_capability=(9, 0),
            architecture=9,
            brand=14,
            power_limit_w=900,
            idle_power_w=90,
            max_sm_clock_mhz=1980,
            idle_sm_clock_mhz=345,
            memory_clock_mhz=2619,
            vbios="96.00.9B.00.01",
            memory_slices=8,
            gi_profiles=_seven_way(
                mem_1g=11264,
                mem_2slice=22528,
                mem_4slice=47872,
                mem_7g=96256,
                sms=_HOPPER_SMS,
                ce_7g=8,
                dec=_HOPPER_DEC,
                jpg=_HOPPER_DEC,
            ),
        ),
        ModelSpec(
            key="T4",
            name="Tesla T4",
            pci_device_id=0x1EB810DE,
            pci_subsystem_id=0x12A210DE,
            memory_mib=15360,
            sms=40,
            compute_capability=(7, 5),
            architecture=6,
            brand=2,
            power_limit_w=70,
            idle_power_w=10,
            max_sm_clock_mhz=1590,
            idle_sm_clock_mhz=300,
            memory_clock_mhz=5000,
            vbios="90.04.96.00.A0",
            has_memory_temp=False,
            has_remapped_rows=False,
        ),
        ModelSpec(
            key="L4",
            name="NVIDIA L4",
            pci_device_id=0x27B810DE,
            pci_subsystem_id=0x16CA10DE,
            memory_mib=23034,
            sms=58,
            compute_capability=(8, 9),
            architecture=8,
            brand=14,
            power_limit_w=72,
            idle_power_w=16,
            max_sm_clock_mhz=2040,
            idle_sm_clock_mhz=210,
            memory_clock_mhz=6251,
            vbios="95.04.29.00.06",
            has_memory_temp=False,
        ),
    )
}

MODEL_ALIASES: dict[str, str] = {
    "a100": "A100-SXM4-40GB",
    "a100-40gb": "A100-SXM4-40GB",
    "a100-80gb": "A100-SXM4-80GB",
    "a30": "A30-24GB",
    "h100": "H100-SXM5-80GB",
    "h100-80gb": "H100-SXM5-80GB",
    "h100-nvl": "H100-NVL-94GB",
    "h200": "H200-141GB",
    "gh200": "GH200-96GB",
    "t4": "T4",
    "l4": "L4",
}


def find_model(name: str) -> ModelSpec | None:
    """Look a model up by catalogue key or alias, case-insensitively."""
    for key, model in MODELS.items():
        if key.lower() == name.lower():
            return model
    alias = MODEL_ALIASES.get(name.lower())
    return MODELS[alias] if alias else None


@dataclass(frozen=True)
class CiProfileSpec:
    """A compute-instance profile inside a GI of ``gi_slices`` compute slices."""

    id: int
    slices: int
    instances: int
    sms: int
    starts: tuple[int, ...]


def ci_profiles_for(model: ModelSpec, gi: GiProfileSpec) -> tuple[CiProfileSpec, ...]:
    """CI profiles available inside one GI (mig.md §1.5): sizes 1, 2, 3, 4, 7 that fit the GI,
    except 3c inside 4g; a sub-CI of ``c`` slices gets ``c`` × the 1g SM count."""
    sms_per_slice = min(p.sms for p in model.gi_profiles if p.slices == 1)
    out = []
    for c, ci_id in CI_PROFILE_BY_SLICES.items():
        if c > gi.slices or (gi.slices == 4 and c == 3):
            continue
        sms = gi.sms if c == gi.slices else c * sms_per_slice
        starts = tuple(range(0, gi.slices - c + 1, c)) if c < gi.slices else (0,)
        out.append(CiProfileSpec(ci_id, c, gi.slices // c, sms, starts))
    return tuple(out)
