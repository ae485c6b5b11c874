"""Prepare and unprepare a dynamic MIG device: create exactly the GPU instance the claim was
allocated (its profile at its start) and its full compute instance through the NVML facade,
and give back the MIG device's UUID for the CDI spec; unprepare destroys them.

Idempotent both ways: preparing a device whose instance exists and is ours (its MIG UUID is
among ``owned``, the driver's checkpoint) returns it; unpreparing what is gone does nothing.
The placement is never changed: when any instance the driver did not create holds one of the
device's memory slices, prepare refuses and names it. MIG mode is never toggled here: with it
off (or a change pending) prepare refuses and says how to turn it on.

``mig_gpu`` reads what ``mig_devices`` publishes for a GPU (profiles, and the instances that
are not the driver's, as ``foreign``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from gpu_operator.dra.mig_devices import MigGpu, parse_device_name
from gpu_operator.errors import GpuError, GpuOperatorError
from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import GpuInstance, GpuInstanceProfile, MigDevice, Placement
from gpu_operator.mig.placement import Placed
from gpu_operator.names import MIG_CONFIG_LABEL


class MigPrepareError(GpuOperatorError):
    """A dynamic MIG device could not be prepared or unprepared; the message says which, on
    which GPU, and why."""


@dataclass(frozen=True)
class PreparedMig:
    """A MIG device the DRA driver created: what its checkpoint keeps."""

    device: str
    """The DRA device name (``gpu-0-mig-3g40gb-9-4``)."""
    parent_index: int
    parent_uuid: str
    profile_id: int
    profile: str
    start: int
    size: int
    gpu_instance_id: int
    compute_instance_id: int
    uuid: str
    """The MIG device's UUID (``MIG-…``): what the CDI spec and ``NVIDIA_VISIBLE_DEVICES`` name."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreparedMig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _gpu_by_minor(nvml: Nvml, minor: int, device: str) -> tuple[int, str]:
    for info in nvml.gpus():
        if info.minor_number == minor:
            return info.index, info.uuid
    raise MigPrepareError(f"{device}: no GPU with minor number {minor} on this node")


def _profile(
    nvml: Nvml, index: int, profile_id: int, start: int, device: str
) -> GpuInstanceProfile:
    found = next((p for p in nvml.gi_profiles(index) if p.id == profile_id), None)
    if found is None:
        raise MigPrepareError(f"{device}: GPU {index} has no GPU-instance profile {profile_id}")
    if start not in {pl.start for pl in found.placements}:
        legal = ", ".join(str(s) for s in sorted({pl.start for pl in found.placements}))
        raise MigPrepareError(
            f"{device}: {found.name} cannot start at memory slice {start} (legal: {legal})"
        )
    return found


def _require_mig_on(nvml: Nvml, index: int, device: str) -> None:
    mode = nvml.mig_mode(index)
    if mode is None:
        raise MigPrepareError(f"{device}: GPU {index} does not support MIG")
    if not mode.enabled or mode.change_pending:
        state = mode.current.value + (
            f" (change to {mode.pending.value} pending)" if mode.change_pending else ""
        )
        raise MigPrepareError(
            f"{device}: MIG mode is {state} on GPU {index}; dynamic MIG needs it enabled and "
            f"the DRA driver never changes it: enable it ({MIG_CONFIG_LABEL}=all-enabled, "
            f"or gpu-operator mig apply) and retry"
        )


def _mig_device(nvml: Nvml, index: int, gi_id: int) -> MigDevice | None:
    return next((m for m in nvml.mig_devices(index) if m.gpu_instance_id == gi_id), None)


def _record(
    device: str,
    index: int,
    parent_uuid: str,
    profile: GpuInstanceProfile,
    start: int,
    mig: MigDevice,
) -> PreparedMig:
    return PreparedMig(
        device=device,
        parent_index=index,
        parent_uuid=parent_uuid,
        profile_id=profile.id,
        profile=profile.name,
        start=start,
        size=profile.memory_slices,
        gpu_instance_id=mig.gpu_instance_id,
        compute_instance_id=mig.compute_instance_id,
        uuid=mig.uuid,
    )


def _describe(gi: GpuInstance) -> str:
    return f"GPU instance {gi.id} ({gi.profile_name} at slice {gi.placement.start})"


def prepare(nvml: Nvml, device: str, *, owned: Collection[str] = ()) -> PreparedMig:
    """Create the MIG device ``device`` names (GI at its placement + full CI); ``owned`` are
    the MIG UUIDs the driver created before. Raises ``MigPrepareError`` naming the cause."""
    spec = parse_device_name(device)
    if spec is None:
        raise MigPrepareError(f"{device!r} is not a dynamic MIG device name")
    index, parent_uuid = _gpu_by_minor(nvml, spec.minor, device)
    _require_mig_on(nvml, index, device)
    profile = _profile(nvml, index, spec.profile_id, spec.start, device)
    wanted = Placement(spec.start, profile.memory_slices)
    try:
        taken = [gi for gi in nvml.gpu_instances(index) if gi.placement.overlaps(wanted)]
        exact = next(
            (
                gi
                for gi in taken
                if gi.profile_id == profile.id and gi.placement == wanted and len(taken) == 1
            ),
            None,
        )
        if exact is not None:
            mig = _mig_device(nvml, index, exact.id)
            if mig is not None and mig.uuid in owned:
                return _record(device, index, parent_uuid, profile, spec.start, mig)
        if taken:
            held = ", ".join(_describe(gi) for gi in taken)
            raise MigPrepareError(
                f"{device}: memory slices {wanted.start}-{wanted.end - 1} of GPU {index} are "
                f"held by {held}, which the DRA driver did not create; it never moves or "
                f"destroys instances it does not own: remove them (nvidia-smi mig -dci, -dgi) "
                f"or keep this GPU out of dynamic MIG"
            )
        gi = nvml.create_gpu_instance(index, profile.id, spec.start)
        try:
            ci = nvml.create_compute_instance(index, gi.id)
        except GpuError:
            nvml.destroy_gpu_instance(index, gi.id)
            raise
        mig = _mig_device(nvml, index, gi.id)
        if mig is None or mig.compute_instance_id != ci.id:
            raise MigPrepareError(
                f"{device}: created {_describe(gi)} but NVML lists no MIG device for it"
            )
    except GpuError as error:
        raise MigPrepareError(f"{device}: preparing on GPU {index} failed: {error}") from error
    return _record(device, index, parent_uuid, profile, spec.start, mig)


def unprepare(nvml: Nvml, prepared: PreparedMig) -> bool:
    """Destroy the compute and GPU instance of a prepared device; ``False`` when it is already
    gone (or its ids now belong to another device, which is left alone)."""
    index = prepared.parent_index
    try:
        mode = nvml.mig_mode(index)
        if mode is None or not mode.enabled:
            return False
        mig = next((m for m in nvml.mig_devices(index) if m.uuid == prepared.uuid), None)
        if mig is None:
            return False
        gi = next(g for g in nvml.gpu_instances(index) if g.id == mig.gpu_instance_id)
        for ci in gi.compute_instances:
            nvml.destroy_compute_instance(index, gi.id, ci.id)
        nvml.destroy_gpu_instance(index, gi.id)
    except GpuError as error:
        raise MigPrepareError(
            f"{prepared.device}: removing MIG device {prepared.uuid} from GPU {index} failed: "
            f"{error}"
        ) from error
    return True


def foreign_instances(nvml: Nvml, index: int, owned: Collection[str] = ()) -> tuple[Placed, ...]:
    """The GPU instances on a GPU that the driver did not create (no MIG UUID of theirs is in
    ``owned``): what ``MigGpu.foreign`` holds, so nothing is published over them."""
    mode = nvml.mig_mode(index)
    if mode is None or not mode.enabled:
        return ()
    profiles = {p.id: p for p in nvml.gi_profiles(index)}
    ours = {m.gpu_instance_id for m in nvml.mig_devices(index) if m.uuid in owned}
    return tuple(
        Placed(profiles[gi.profile_id], gi.placement.start)
        for gi in nvml.gpu_instances(index)
        if gi.id not in ours
    )


def mig_gpu(
    nvml: Nvml,
    index: int,
    *,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
    owned: Collection[str] = (),
) -> MigGpu:
    """What ``mig_devices`` publishes for one GPU, read through the facade: its minor, UUID,
    GI profiles, the plugin's attributes for it, and the instances that are not ours."""
    info = nvml.gpu(index)
    return MigGpu(
        info.minor_number,
        info.uuid,
        tuple(nvml.gi_profiles(index)),
        attributes=dict(attributes or {}),
        foreign=foreign_instances(nvml, index, owned),
    )
