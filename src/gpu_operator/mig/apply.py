"""``mig apply``: run a plan on the node through the NVML facade, then assert it took.

Before any change, every GPU the plan would touch is checked for compute processes: a GPU in use
is refused up front, naming the processes (and, where the caller can tell, the pods that hold
them), so nothing is half-destroyed under a running job. Order: MIG modes first (destroy
instances, set the mode, one reset of every GPU left pending when the model needs it, verify),
then per GPU the GPU instances largest first at the solver's placements, their compute
instances, and a read-back. A GPU that fails is cleared (no MIG instances) and the error names
it, the step and the cause; pending modes that could not take effect are set back. GPUs that
already match are never touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gpu_operator.errors import GpuError, GpuOperatorError
from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import MigDevice
from gpu_operator.mig.observe import observe, observe_gpu
from gpu_operator.mig.plan import GpuChange, Plan, plan
from gpu_operator.mig.spec_v1 import MigConfigEntry


class ApplyError(GpuOperatorError):
    """Applying failed; the message names the GPU, what was being done and the state left."""


@dataclass(frozen=True)
class Step:
    """A progress event: one line per GPU and step (the CLI prints them, tests hook into them)."""

    gpu: int | None
    kind: str
    """``mode``, ``reset``, ``clear``, ``create``, ``done``, ``unchanged``."""
    text: str

    def __str__(self) -> str:
        return self.text


Progress = Callable[[Step], None]
Hook = Callable[[str], None]
Owners = Callable[[Iterable[str]], Mapping[str, str]]
"""Device UUIDs (``MIG-…`` or ``GPU-…``) → who holds each (``pod default/train``)."""


@dataclass(frozen=True)
class GpuUser:
    """A compute process on a GPU that a plan would change."""

    gpu_label: str
    pid: int
    device: str
    """The UUID of the MIG device it runs on, or of the whole GPU."""
    profile: str
    """The MIG device's profile (``3g.20gb``); empty for a whole GPU."""


class GpuInUse(ApplyError):
    """Refused before any change: processes use GPUs the plan would change."""

    def __init__(self, users: Sequence[GpuUser], owners: Mapping[str, str]):
        self.users = tuple(users)
        lines = []
        for label in dict.fromkeys(u.gpu_label for u in users):
            held = []
            for user in (u for u in users if u.gpu_label == label):
                owner = owners.get(user.device)
                where = f"MIG {user.profile} {user.device}" if user.profile else user.device
                held.append(f"pid {user.pid}{f' ({owner})' if owner else ''} on {where}")
            lines.append(f"{label} is in use by {'; '.join(held)}")
        super().__init__(
            f"{'. '.join(lines)}. Nothing was changed: stop those processes (drain the node's "
            f"GPU pods) and apply again"
        )


def _nothing(_: object) -> None:
    return None


def explain(error: Exception) -> str:
    """An error's message with its NVML error name (the code alone says little to a user)."""
    name = getattr(error, "nvml_name", None)
    text = str(error)
    return f"{text} [{name}]" if name and name not in text else text


def clear_gpu(nvml: Nvml, index: int) -> None:
    """Destroy every compute instance, then every GPU instance, of one GPU."""
    for gi in nvml.gpu_instances(index):
        for ci in gi.compute_instances:
            nvml.destroy_compute_instance(index, gi.id, ci.id)
        nvml.destroy_gpu_instance(index, gi.id)


def gpu_users(nvml: Nvml, indexes: Iterable[int]) -> list[GpuUser]:
    """The compute processes on the given GPUs, each with the device it runs on."""
    users = []
    for index in indexes:
        processes = nvml.processes(index)
        if not processes:
            continue
        info = nvml.gpu(index)
        label = f"GPU {index} ({info.name})"
        migs: dict[tuple[int | None, int | None], MigDevice] = {
            (m.gpu_instance_id, m.compute_instance_id): m for m in nvml.mig_devices(index)
        }
        for process in processes:
            mig = migs.get((process.gpu_instance_id, process.compute_instance_id))
            if mig is None and process.gpu_instance_id is not None:
                mig = next(
                    (m for m in migs.values() if m.gpu_instance_id == process.gpu_instance_id),
                    None,
                )
            device, profile = (mig.uuid, mig.profile) if mig else (info.uuid, "")
            users.append(GpuUser(label, process.pid, device, profile))
    return users


def refuse_if_in_use(nvml: Nvml, the_plan: Plan, owners: Owners | None = None) -> None:
    """Raise ``GpuInUse`` when a GPU the plan changes runs compute processes."""
    users = gpu_users(nvml, [c.index for c in the_plan.changes])
    if users:
        named = owners([u.device for u in users]) if owners else {}
        raise GpuInUse(users, named)


def _set_back_pending(nvml: Nvml, indexes: Sequence[int]) -> None:
    for index in indexes:
        try:
            mode = nvml.mig_mode(index)
            if mode is not None and mode.change_pending:
                nvml.set_mig_mode(index, mode.enabled)
        except GpuError:
            continue  # the error being raised already says what is wrong with this GPU


def apply_modes(
    nvml: Nvml, changes: Sequence[GpuChange], *, skip_reset: bool, progress: Progress
) -> None:
    """Set MIG modes; reset all GPUs left pending in one go (Ampere), unless ``skip_reset``."""
    touched: list[int] = []
    current: GpuChange | None = None
    try:
        pending: list[GpuChange] = []
        for current in changes:
            assert current.set_mode is not None
            if current.clear:
                clear_gpu(nvml, current.index)
            mode, status = nvml.set_mig_mode(current.index, current.set_mode)
            touched.append(current.index)
            wanted = "enabled" if current.set_mode else "disabled"
            note = f" (pending: {status})" if mode.change_pending else ""
            progress(Step(current.index, "mode", f"{current.label}: MIG mode → {wanted}{note}"))
            if mode.change_pending:
                pending.append(current)
        current = None
        if pending and not skip_reset:
            indexes = [c.index for c in pending]
            progress(Step(None, "reset", f"resetting GPU(s) {', '.join(map(str, indexes))}"))
            nvml.reset_gpus(indexes)
        for current in changes:
            now = nvml.mig_mode(current.index)
            assert now is not None
            if now.change_pending and skip_reset:
                continue
            if now.change_pending or now.enabled is not current.set_mode:
                raise ApplyError(
                    f"{current.label}: MIG mode is still {now.current.value} after the reset"
                )
    except (GpuError, ApplyError) as error:
        _set_back_pending(nvml, touched)
        where = f"{current.label}: " if current is not None else ""
        raise ApplyError(
            f"{where}changing the MIG mode failed: {explain(error)}. Pending mode changes were "
            f"set back; stop the processes that use the GPU (or reboot) and apply again"
        ) from error


def _ci_profile_id(nvml: Nvml, index: int, gi_id: int, slices: int, full: int) -> int | None:
    if slices == full:
        return None
    for p in nvml.ci_profiles(index, gi_id):
        if p.slice_count == slices:
            return p.id
    raise ApplyError(f"GPU {index}: GPU instance {gi_id} offers no {slices}-slice compute instance")


def apply_layout(nvml: Nvml, change: GpuChange, progress: Progress) -> None:
    """Clear the GPU, create its GIs at the planned starts and their CIs, and read back."""
    assert change.create is not None
    index = change.index
    step = "clearing"
    try:
        mode = nvml.mig_mode(index)
        if mode is None or not mode.enabled:
            raise ApplyError("unable to apply MIG config with MIG mode disabled")
        existing = nvml.gpu_instances(index)
        if existing:
            clear_gpu(nvml, index)
            progress(Step(index, "clear", f"{change.label}: destroyed {len(existing)} instance(s)"))
        for creation in change.create:
            step = f"creating {creation}"
            gi = nvml.create_gpu_instance(index, creation.profile.id, creation.start)
            for slices in creation.ci_slices:
                ci_id = _ci_profile_id(nvml, index, gi.id, slices, creation.profile.slice_count)
                nvml.create_compute_instance(index, gi.id, ci_id)
        step = "reading back"
        state = observe_gpu(nvml, index)
        placed = sorted((gi.profile_id, gi.placement.start) for gi in state.instances)
        planned = sorted((c.profile.id, c.start) for c in change.create)
        if state.devices() != Counter(change.target.devices) or placed != planned:
            raise ApplyError(f"read back {dict(state.devices())} at {placed}, not the plan")
    except (GpuError, ApplyError) as error:
        left = "the GPU was left with no MIG instances"
        try:
            clear_gpu(nvml, index)
        except GpuError as cleanup:
            left = f"clearing the GPU failed too ({explain(cleanup)})"
        raise ApplyError(f"{change.label}: {step} failed: {explain(error)}; {left}") from error
    done = " ".join(str(c) for c in change.create) or "no instances"
    progress(Step(index, "create", f"{change.label}: {done}"))


def apply_plan(
    nvml: Nvml,
    the_plan: Plan,
    *,
    mode_only: bool = False,
    skip_reset: bool = False,
    progress: Progress = _nothing,
    hook: Hook = _nothing,
) -> None:
    """Run a plan: ``pre-apply-mode`` then modes, ``pre-apply-config`` then layouts."""
    modes = the_plan.mode_changes()
    if modes:
        hook("pre-apply-mode")
        apply_modes(nvml, modes, skip_reset=skip_reset, progress=progress)
    if mode_only:
        return
    layouts = [c for c in the_plan.changes if c.create is not None]
    if layouts:
        hook("pre-apply-config")
    for change in layouts:
        apply_layout(nvml, change, progress)


def apply_config(
    nvml: Nvml,
    entries: Sequence[MigConfigEntry],
    *,
    mode_only: bool = False,
    skip_reset: bool = False,
    progress: Progress = _nothing,
    hook: Hook = _nothing,
    owners: Owners | None = None,
) -> Plan:
    """Plan and check that no GPU to change is in use (refusing before any change), apply,
    and assert; returns the plan that ran."""
    gpus = observe(nvml)
    the_plan = plan(entries, gpus, mode_only=mode_only)
    refuse_if_in_use(nvml, the_plan, owners)
    changed = {c.index for c in the_plan.changes}
    for gpu in gpus:
        if gpu.index in the_plan.targets and gpu.index not in changed:
            progress(Step(gpu.index, "unchanged", f"{gpu.label}: already as configured"))
    apply_plan(
        nvml, the_plan, mode_only=mode_only, skip_reset=skip_reset, progress=progress, hook=hook
    )
    after = plan(entries, observe(nvml), mode_only=True if skip_reset else mode_only)
    if not after.empty:
        differ = "; ".join(f"{c.label}: {c.why}" for c in after.changes)
        raise ApplyError(f"applied, but the node still differs: {differ}")
    return the_plan
