"""Live MIG state → a v1 config: ``mig export`` (the layout as it is) and ``mig
generate-config`` (every layout the hardware offers, as mig-parted ≥ 0.14 generates it).

Pure functions over observed ``GpuState`` records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.observe import GpuState
from gpu_operator.mig.placement import fits, full_profile
from gpu_operator.mig.profiles import config_name, parse_profile, sort_key
from gpu_operator.mig.spec_v1 import MigConfigEntry, Spec

# mig-parted's balanced formula: compute slices of the whole GPU → {GI compute slices: count}.
BALANCED = {7: {1: 2, 2: 1, 3: 1}, 4: {1: 2, 2: 1}}


def _entry(data: dict[str, Any]) -> MigConfigEntry:
    return MigConfigEntry.model_validate(data)


def _live_devices(gpu: GpuState) -> dict[str, int]:
    counts = {n: c for n, c in gpu.devices().items() if "(" not in n}
    return dict(sorted(counts.items(), key=lambda kv: sort_key(kv[0])))


def export_spec(gpus: Sequence[GpuState], label: str = "current") -> Spec:
    """The node's layout as config ``label``: one entry per group of identical GPUs
    (``devices: all`` when every MIG-capable GPU is the same)."""
    capable = [g for g in gpus if g.mode is not None]
    groups: dict[tuple[bool, tuple[tuple[str, int], ...]], list[int]] = {}
    for gpu in capable:
        assert gpu.mode is not None
        key = (gpu.mode.enabled, tuple(_live_devices(gpu).items()))
        groups.setdefault(key, []).append(gpu.index)
    entries = []
    for (enabled, devices), indexes in groups.items():
        data: dict[str, Any] = {
            "devices": "all" if len(groups) == 1 else indexes,
            "mig-enabled": enabled,
        }
        if enabled:
            data["mig-devices"] = dict(devices)
        entries.append(_entry(data))
    if not entries:
        entries.append(_entry({"devices": "all", "mig-enabled": False}))
    return Spec.model_validate({"version": "v1", "mig-configs": {label: entries}})


def balanced(profiles: Sequence[GpuInstanceProfile]) -> dict[str, int] | None:
    """The balanced layout: per GI size of the formula, the plain profile with the most
    instances (``1g.10gb`` over ``1g.20gb``); ``None`` when the formula does not apply."""
    formula = BALANCED.get(full_profile(profiles).slice_count)
    if formula is None:
        return None
    chosen: dict[str, int] = {}
    picked: list[GpuInstanceProfile] = []
    for slices, count in formula.items():
        plain = [
            p for p in profiles if p.slice_count == slices and not parse_profile(p.name).suffix
        ]
        if not plain:
            return None
        best = max(plain, key=lambda p: (p.instance_count, -p.memory_mib))
        chosen[best.name] = count
        picked += [best] * count
    return chosen if fits(profiles, picked) else None


def generate_spec(gpus: Sequence[GpuState]) -> Spec:
    """``all-disabled``, ``all-enabled``, ``all-<profile>`` at its instance count and
    ``all-balanced``; device filters only when the node has more than one MIG model."""
    models: dict[int, GpuState] = {}
    for gpu in gpus:
        if gpu.mode is not None and gpu.profiles:
            models.setdefault(gpu.info.pci_device_id, gpu)
    several = len(models) > 1
    configs: dict[str, list[MigConfigEntry]] = {
        "all-disabled": [_entry({"devices": "all", "mig-enabled": False})],
        "all-enabled": [_entry({"devices": "all", "mig-enabled": True, "mig-devices": {}})],
    }

    def add(name: str, gpu: GpuState, devices: dict[str, int]) -> None:
        data: dict[str, Any] = {"devices": "all", "mig-enabled": True, "mig-devices": devices}
        if several:
            data = {"device-filter": gpu.info.pci_device_id_hex, **data}
        configs.setdefault(name, []).append(_entry(data))

    for gpu in models.values():
        for p in gpu.profiles:  # nvidia-smi's order: smallest first
            add(f"all-{config_name(p.name)}", gpu, {p.name: p.instance_count})
    for gpu in models.values():
        layout = balanced(gpu.profiles)
        if layout is not None:
            add("all-balanced", gpu, layout)
    return Spec.model_validate({"version": "v1", "mig-configs": configs})
