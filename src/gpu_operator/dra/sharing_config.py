"""A claim's opaque device configuration (upstream's ``resource.nvidia.com/v1beta1`` API of
``k8s-dra-driver-gpu``), read from ``status.allocation.devices.config``: decoded strictly,
defaulted, validated and matched to the claim's devices — pure, no GPU touched.

The kinds are upstream's ``GpuConfig`` (``sharing``: ``strategy`` ``TimeSlicing`` or ``MPS``,
``timeSlicingConfig.interval`` ``Default|Short|Medium|Long``, ``mpsConfig`` with
``defaultActiveThreadPercentage``, ``defaultPinnedDeviceMemoryLimit`` and
``defaultPerDevicePinnedMemoryLimit``) and ``MigDeviceConfig`` (``sharing``: ``TimeSlicing`` or
``MPS`` with ``mpsConfig``). Precedence as upstream's ``GetOpaqueDeviceConfigs``: configs of the
DeviceClass before those of the claim, later before earlier; a result takes the last config
naming its request, else the last one naming no request that fits its device type, else the
default (time-slicing at the ``Default`` interval). Each refusal is a ``ClaimError`` naming the
config entry and the field."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.claims import ClaimError, ClaimRef

API_VERSION = "resource.nvidia.com/v1beta1"
GPU_CONFIG = "GpuConfig"
MIG_DEVICE_CONFIG = "MigDeviceConfig"
TIME_SLICING = "TimeSlicing"
MPS = "MPS"
INTERVALS = {"Default": 0, "Short": 1, "Medium": 2, "Long": 3}
"""Upstream's ``TimeSliceInterval.Int()``: the value of ``nvidia-smi compute-policy
--set-timeslice``."""
SOURCES = ("FromClass", "FromClaim")
_MIB = 2**20
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_FACTORS: dict[str | None, int] = {
    None: 1,
    **{s: 2 ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: 10 ** (3 * (i + 1)) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}


class ConfigProblem(Exception):
    """What is wrong with one config; the message starts with the field's path."""


@dataclass(frozen=True)
class MpsSettings:
    active_thread_percentage: int | None = None
    pinned_memory_limit: str | None = None
    """``defaultPinnedDeviceMemoryLimit`` as written (a quantity)."""
    per_device_pinned_memory_limit: tuple[tuple[str, str], ...] = ()
    """``defaultPerDevicePinnedMemoryLimit``: (GPU index in the claim or UUID, quantity)."""


@dataclass(frozen=True)
class Sharing:
    """One decoded, defaulted config: its kind and how its devices are shared."""

    kind: str
    strategy: str
    interval: str = "Default"
    mps: MpsSettings | None = None
    where: str = "default"
    """Where it came from (``status.allocation.devices.config[1] (FromClaim)``), for errors."""


DEFAULT_GPU = Sharing(GPU_CONFIG, TIME_SLICING)
"""Upstream's ``DefaultGpuConfig()``."""
DEFAULT_MIG = Sharing(MIG_DEVICE_CONFIG, TIME_SLICING)
"""Upstream's ``DefaultMigDeviceConfig()``."""


@dataclass
class Group:
    """The results one config applies to (upstream's prepared device group)."""

    sharing: Sharing
    devices: list[str] = field(default_factory=list)
    """Device names, in the claim's result order."""


# --- decoding ------------------------------------------------------------------------------


def _object(value: Any, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigProblem(f"{path}: must be an object, not {type(value).__name__}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise ConfigProblem(
            f"{path + '.' if path else ''}{unknown[0]}: unknown field "
            f"(allowed: {', '.join(allowed)})"
        )
    return value


def quantity_bytes(value: Any, path: str) -> int:
    """A Kubernetes quantity (``10Gi``, ``512M``, ``1073741824``) in bytes, rounded down."""
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return int(value)
    if match is None:
        raise ConfigProblem(f"{path}: {value!r} is not a quantity (like 10Gi or 512Mi)")
    number: str = match.group(1)
    suffix: str | None = match.group(2)
    whole, _, frac = number.partition(".")
    scale = int(10 ** len(frac))
    return int(whole + frac) * _FACTORS[suffix] // scale


def megabytes(value: Any, path: str) -> str:
    """Upstream's ``limit.Megabyte()``: whole MiB with an ``M`` (what MPS reads); a limit
    under 1 MiB is refused as upstream refuses it."""
    mib = quantity_bytes(value, path) // _MIB
    if mib <= 0:
        raise ConfigProblem(f"{path}: invalid limit: value set too low: {value}")
    return f"{mib}M"


def _mps(value: Any, path: str) -> MpsSettings:
    body = _object(
        value,
        path,
        (
            "defaultActiveThreadPercentage",
            "defaultPinnedDeviceMemoryLimit",
            "defaultPerDevicePinnedMemoryLimit",
        ),
    )
    percentage = body.get("defaultActiveThreadPercentage")
    if percentage is not None:
        where = f"{path}.defaultActiveThreadPercentage"
        if not isinstance(percentage, int) or isinstance(percentage, bool):
            raise ConfigProblem(f"{where}: must be an integer, not {percentage!r}")
        if percentage < 0:
            raise ConfigProblem(f"{where}: active thread percentage must not be negative")
        if percentage > 100:
            raise ConfigProblem(f"{where}: active thread percentage must not be greater than 100")
    limit = body.get("defaultPinnedDeviceMemoryLimit")
    if limit is not None:
        megabytes(limit, f"{path}.defaultPinnedDeviceMemoryLimit")
        limit = str(limit)
    per_device = body.get("defaultPerDevicePinnedMemoryLimit") or {}
    where = f"{path}.defaultPerDevicePinnedMemoryLimit"
    if not isinstance(per_device, Mapping):
        raise ConfigProblem(f"{where}: must be a map of GPU index or UUID to a quantity")
    for key, each in per_device.items():
        megabytes(each, f"{where}[{key}]")
    return MpsSettings(
        active_thread_percentage=percentage,
        pinned_memory_limit=limit,
        per_device_pinned_memory_limit=tuple((str(k), str(v)) for k, v in per_device.items()),
    )


def decode(parameters: Any, where: str) -> Sharing:
    """One ``opaque.parameters`` object as upstream's strict decoder, ``Normalize()`` and
    ``Validate()`` read it; ``ConfigProblem`` naming the field when it can't be."""
    body = _object(parameters, "", ("apiVersion", "kind", "sharing"))
    if body.get("apiVersion") != API_VERSION:
        raise ConfigProblem(
            f"apiVersion: {body.get('apiVersion')!r} is not {API_VERSION} (the only version "
            f"of driver {DRIVER_NAME}'s configuration)"
        )
    kind = body.get("kind")
    if kind not in (GPU_CONFIG, MIG_DEVICE_CONFIG):
        raise ConfigProblem(
            f"kind: {kind!r} is not a configuration of driver {DRIVER_NAME} "
            f"({GPU_CONFIG} or {MIG_DEVICE_CONFIG})"
        )
    sharing = body.get("sharing")
    if sharing is None:
        if kind == MIG_DEVICE_CONFIG:
            raise ConfigProblem("sharing: no sharing strategy set")
        return Sharing(GPU_CONFIG, TIME_SLICING, where=where)
    fields = ["strategy", "mpsConfig"]
    if kind == GPU_CONFIG:
        fields.insert(1, "timeSlicingConfig")
    sharing = _object(sharing, "sharing", fields)
    strategy = sharing.get("strategy")
    if strategy == "Fabric":
        raise ConfigProblem("sharing.strategy: fabric GPU sharing strategy is not enabled")
    if strategy not in (TIME_SLICING, MPS):
        raise ConfigProblem(
            f"sharing.strategy: unknown GPU sharing strategy: {strategy} "
            f"(one of {TIME_SLICING}, {MPS})"
        )
    if strategy == TIME_SLICING:
        if sharing.get("mpsConfig") is not None:
            raise ConfigProblem(
                f"sharing.mpsConfig: cannot use MpsConfig with the '{TIME_SLICING}' strategy"
            )
        ts = _object(
            sharing.get("timeSlicingConfig") or {}, "sharing.timeSlicingConfig", ["interval"]
        )
        interval = ts.get("interval") or "Default"
        if interval not in INTERVALS:
            raise ConfigProblem(
                f"sharing.timeSlicingConfig.interval: unknown time-slice interval: {interval} "
                f"(one of {', '.join(INTERVALS)})"
            )
        return Sharing(kind, TIME_SLICING, interval=interval, where=where)
    if sharing.get("timeSlicingConfig") is not None:
        raise ConfigProblem(
            f"sharing.timeSlicingConfig: cannot use TimeSlicingConfig with the '{MPS}' strategy"
        )
    return Sharing(
        kind, MPS, mps=_mps(sharing.get("mpsConfig") or {}, "sharing.mpsConfig"), where=where
    )


@dataclass(frozen=True)
class OpaqueConfig:
    requests: tuple[str, ...]
    sharing: Sharing


def opaque_configs(ref: ClaimRef, allocation: Mapping[str, Any]) -> list[OpaqueConfig]:
    """Our driver's configs of the allocation, lowest precedence first (class, then claim)."""
    entries = (allocation.get("devices") or {}).get("config") or []
    ordered: dict[str, list[tuple[int, Mapping[str, Any]]]] = {s: [] for s in SOURCES}
    for i, entry in enumerate(entries):
        where = f"status.allocation.devices.config[{i}]"
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if source not in SOURCES:
            raise ClaimError(
                f"ResourceClaim {ref}: {where}.source: invalid config source: {source}"
            )
        ordered[source].append((i, entry))
    out = []
    for source in SOURCES:
        for i, entry in ordered[source]:
            where = f"status.allocation.devices.config[{i}] ({source})"
            opaque = entry.get("opaque")
            if opaque is None:
                raise ClaimError(
                    f"ResourceClaim {ref}: {where}: only opaque parameters are supported by "
                    f"driver {DRIVER_NAME}"
                )
            if opaque.get("driver") != DRIVER_NAME:
                continue  # another driver's config for a request either could serve
            try:
                sharing = decode(opaque.get("parameters"), where)
            except ConfigProblem as problem:
                raise ClaimError(f"ResourceClaim {ref}: {where}: {problem}") from problem
            out.append(OpaqueConfig(tuple(entry.get("requests") or ()), sharing))
    return out


def groups(
    ref: ClaimRef,
    allocation: Mapping[str, Any],
    results: Sequence[tuple[str, str]],
    device_kind: Mapping[str, str],
) -> list[Group]:
    """The config each of our results ``(request, device)`` gets, grouped by config (in the
    order first used); ``device_kind``: device name → ``gpu`` (any other device is ``mig``)."""
    configs = [
        OpaqueConfig((), DEFAULT_MIG),
        OpaqueConfig((), DEFAULT_GPU),
        *opaque_configs(ref, allocation),
    ]
    chosen: dict[int, Group] = {}
    for request, device in results:
        kind = device_kind.get(device, "mig")
        wanted = GPU_CONFIG if kind == "gpu" else MIG_DEVICE_CONFIG
        for index in range(len(configs) - 1, -1, -1):
            config = configs[index]
            if request in config.requests:
                if config.sharing.kind != wanted:
                    raise ClaimError(
                        f"ResourceClaim {ref}: {config.sharing.where}: cannot apply "
                        f"{config.sharing.kind} to device {device} of type {kind} "
                        f"(request: {request})"
                    )
                break
            if not config.requests and config.sharing.kind == wanted:
                break
        group = chosen.setdefault(index, Group(configs[index].sharing))
        if device not in group.devices:
            group.devices.append(device)
    return list(chosen.values())


def pinned_limits(settings: MpsSettings, uuids: Sequence[str], where: str) -> dict[str, str]:
    """Upstream's ``Normalize``: UUID → limit (``<MiB>M``) for each GPU of the daemon: the
    default for all, then each per-device entry (by UUID or by index into ``uuids``)."""
    path = f"{where}: sharing.mpsConfig"
    limits = {}
    if settings.pinned_memory_limit is not None:
        each = megabytes(settings.pinned_memory_limit, f"{path}.defaultPinnedDeviceMemoryLimit")
        limits = dict.fromkeys(uuids, each)
    for key, value in settings.per_device_pinned_memory_limit:
        field_path = f"{path}.defaultPerDevicePinnedMemoryLimit[{key}]"
        if key in uuids:
            uuid = key
        elif key.isdigit() and int(key) < len(uuids):
            uuid = uuids[int(key)]
        else:
            raise ConfigProblem(
                f"{field_path}: invalid device: not a UUID of the claim's GPUs nor an index "
                f"below {len(uuids)}"
            )
        limits[uuid] = megabytes(value, field_path)
    return limits


def daemon_id(claim_uid: str, uuids: Sequence[str]) -> str:
    """Upstream's ``GetMpsControlDaemonID``: the claim UID and 5 hex digits of the SHA-256 of
    the comma-joined UUIDs."""
    digest = hashlib.sha256(",".join(uuids).encode()).hexdigest()
    return f"{claim_uid}-{digest[:5]}"
