"""The pure core of ``mig apply`` and ``mig assert``: which GPUs a config's entries select,
what each should become, and the per-GPU changes from what is observed to what is wanted.

``assert`` is "the plan is empty"; ``apply`` runs the plan and asserts again. Everything that
can be refused (unknown profiles, impossible layouts, MIG asked of a GPU without it) is refused
here, before anything on the node changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.observe import GpuState
from gpu_operator.mig.placement import Layout, PlacementError, solve
from gpu_operator.mig.profiles import format_counts, parse_profile, resolve, sort_key
from gpu_operator.mig.spec_v1 import MigConfigEntry


@dataclass(frozen=True)
class Target:
    """What one GPU should be: MIG on or off, and its MIG devices as a multiset of names."""

    enabled: bool
    devices: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.enabled:
            return "MIG disabled"
        return format_counts(self.devices) if self.devices else "MIG enabled, no devices"


@dataclass(frozen=True)
class GiRequest:
    """One GPU instance to create and the compute-instance sizes (compute slices) inside it."""

    profile: GpuInstanceProfile
    ci_slices: tuple[int, ...]


@dataclass(frozen=True)
class Creation:
    """A GI at its solver placement with its CIs, in creation order."""

    profile: GpuInstanceProfile
    start: int
    ci_slices: tuple[int, ...]

    def __str__(self) -> str:
        cis = "" if self.ci_slices == (self.profile.slice_count,) else f"[{self.ci_slices}c]"
        return f"{self.profile.name}@{self.start}{cis}"


@dataclass(frozen=True)
class GpuChange:
    """What apply must do to one GPU; ``why`` says what differs (assert prints it)."""

    index: int
    label: str
    why: str
    set_mode: bool | None = None
    """The MIG mode to set, or ``None`` when the mode is already right."""
    clear: bool = False
    """Destroy every existing compute and GPU instance first."""
    create: tuple[Creation, ...] | None = None
    """Instances to create once the mode is right; ``None`` when the layout is left alone."""
    target: Target = field(default_factory=lambda: Target(False))


@dataclass(frozen=True)
class Plan:
    changes: tuple[GpuChange, ...]
    targets: dict[int, Target]

    @property
    def empty(self) -> bool:
        return not self.changes

    def mode_changes(self) -> list[GpuChange]:
        return [c for c in self.changes if c.set_mode is not None]


def targets(entries: Sequence[MigConfigEntry], gpus: Sequence[GpuState]) -> dict[int, Target]:
    """The target of every GPU some entry selects (a later matching entry wins); GPUs without
    MIG are skipped under ``devices: all`` and an error when listed with MIG enabled."""
    out: dict[int, Target] = {}
    for number, entry in enumerate(entries):
        for gpu in gpus:
            if not entry.matches(gpu.info):
                continue
            if gpu.mode is None:
                if entry.devices != "all" and entry.mig_enabled:
                    raise ConfigError(
                        f"entry {number}: {gpu.label} is listed with mig-enabled: true but "
                        f"does not support MIG"
                    )
                continue
            out[gpu.index] = Target(entry.mig_enabled, entry.wanted())
    return out


def pack_compute_instances(gi_slices: int, sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """Pack CIs of one GI profile into as few GIs as they fit (largest first, each CI at a
    multiple of its size), as mig-parted packs ``1c.3g.20gb: 3`` into one 3g GI."""
    gis: list[tuple[int, list[int]]] = []  # (used compute-slice mask, sizes)
    for c in sorted(sizes, reverse=True):
        for i, (used, members) in enumerate(gis):
            start = next(
                (s for s in range(0, gi_slices - c + 1, c) if not ((1 << c) - 1) << s & used),
                None,
            )
            if start is not None:
                gis[i] = (used | ((1 << c) - 1) << start, [*members, c])
                break
        else:
            gis.append((((1 << c) - 1), [c]))
    return [tuple(members) for _, members in gis]


def gi_requests(gpu: GpuState, devices: dict[str, int]) -> list[GiRequest]:
    """Resolve device names on this GPU and group compute instances into GPU instances."""
    requests: list[GiRequest] = []
    partial: dict[str, list[int]] = {}
    for name, count in sorted(devices.items(), key=lambda kv: sort_key(kv[0])):
        parsed = parse_profile(name)
        try:
            profile = resolve(parsed.gi, gpu.profiles)
        except ConfigError as error:
            raise ConfigError(f"{gpu.label}: {error}") from None
        if parsed.ci_slices is None:
            requests += [GiRequest(profile, (profile.slice_count,))] * count
        else:
            partial.setdefault(profile.name, []).extend([parsed.ci_slices] * count)
    for gi_name, sizes in partial.items():
        profile = resolve(parse_profile(gi_name), gpu.profiles)
        requests += [
            GiRequest(profile, cis) for cis in pack_compute_instances(profile.slice_count, sizes)
        ]
    return requests


def layout_for(gpu: GpuState, devices: dict[str, int]) -> tuple[Creation, ...]:
    """Concrete GIs and CIs for the wanted devices; ``PlacementError`` (naming the GPU and the
    conflicting profiles) when they cannot share the GPU."""
    requests = gi_requests(gpu, devices)
    try:
        layout: Layout = solve(gpu.profiles, [r.profile for r in requests])
    except PlacementError as error:
        raise PlacementError(f"{gpu.label}: {error}", error.conflict) from None
    queues: dict[int, list[tuple[int, ...]]] = {}
    for r in sorted(requests, key=lambda r: sorted(r.ci_slices)):
        queues.setdefault(r.profile.id, []).append(r.ci_slices)
    return tuple(Creation(p.profile, p.start, queues[p.profile.id].pop()) for p in layout.placed)


def gpu_change(gpu: GpuState, target: Target) -> GpuChange | None:
    """The change one GPU needs, or ``None`` when it already is what the target says."""
    assert gpu.mode is not None
    mode_ok = gpu.mode.current is gpu.mode.pending and gpu.mode.enabled is target.enabled
    have = gpu.devices()
    if not target.enabled:
        if mode_ok:
            return None
        return GpuChange(
            gpu.index,
            gpu.label,
            f"MIG mode is {_mode_text(gpu)}, wanted disabled",
            set_mode=False,
            clear=bool(gpu.instances),
            target=target,
        )
    devices_ok = have == Counter(target.devices)
    if mode_ok and devices_ok:
        return None
    create = layout_for(gpu, target.devices)
    if not mode_ok:
        why = f"MIG mode is {_mode_text(gpu)}, wanted enabled with {target.describe()}"
    else:
        why = f"has {format_counts(dict(have))}, wanted {target.describe()}"
    return GpuChange(
        gpu.index,
        gpu.label,
        why,
        set_mode=None if mode_ok else True,
        clear=bool(gpu.instances),
        create=create,
        target=target,
    )


def _mode_text(gpu: GpuState) -> str:
    assert gpu.mode is not None
    if gpu.mode.change_pending:
        return f"{gpu.mode.current.value} (change to {gpu.mode.pending.value} pending)"
    return gpu.mode.current.value


def plan(
    entries: Sequence[MigConfigEntry], gpus: Sequence[GpuState], *, mode_only: bool = False
) -> Plan:
    """Every change the node needs for the selected config; with ``mode_only`` just the MIG
    modes. Raises before anything changes when the config cannot be applied here."""
    wanted = targets(entries, gpus)
    changes = []
    for gpu in gpus:
        target = wanted.get(gpu.index)
        if target is None:
            continue
        change = gpu_change(gpu, target)
        if change is None:
            continue
        if mode_only:
            if change.set_mode is None:
                continue
            change = GpuChange(
                change.index, change.label, change.why, change.set_mode, change.clear, None, target
            )
        changes.append(change)
    return Plan(tuple(changes), wanted)


def unmatched(entries: Sequence[MigConfigEntry], gpus: Sequence[GpuState]) -> list[GpuState]:
    """MIG-capable GPUs no entry selects (``mig apply``/``assert`` decide what that means)."""
    wanted = targets(entries, gpus)
    return [g for g in gpus if g.mode is not None and g.index not in wanted]
