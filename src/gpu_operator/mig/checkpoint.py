"""``mig checkpoint`` / ``mig restore``: save the full MIG state of a node and bring it back.

The file is ours (JSON, ``version: v1``), keyed by GPU UUID, with profiles by name and GI
placements, so a restore recreates the exact placements on the same GPUs::

    {"version": "v1", "mig-state": [{"uuid": "GPU-…", "index": 0, "mig-enabled": true,
      "gpu-instances": [{"profile": "3g.20gb", "start": 4,
                         "compute-instances": ["1c.3g.20gb", "2c.3g.20gb"]}]}]}

Restore goes through the same plan/apply path as a config (modes first, then layouts).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpu_operator.errors import ConfigError
from gpu_operator.mig.observe import GpuState
from gpu_operator.mig.plan import Creation, GpuChange, Plan, Target
from gpu_operator.mig.profiles import parse_profile, resolve


class GiState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    start: int
    compute_instances: list[str] = Field(alias="compute-instances")


class DeviceState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uuid: str
    index: int
    mig_enabled: bool = Field(alias="mig-enabled")
    gpu_instances: list[GiState] = Field(default_factory=list, alias="gpu-instances")


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern="^v1$")
    mig_state: list[DeviceState] = Field(alias="mig-state")


def checkpoint(gpus: Sequence[GpuState]) -> Checkpoint:
    devices = []
    for gpu in gpus:
        if gpu.mode is None:
            continue
        gis = [
            {
                "profile": gi.profile_name,
                "start": gi.placement.start,
                "compute-instances": [ci.name for ci in gi.compute_instances],
            }
            for gi in gpu.instances
        ]
        devices.append(
            {
                "uuid": gpu.info.uuid,
                "index": gpu.index,
                "mig-enabled": gpu.mode.pending.value == "enabled",
                "gpu-instances": gis,
            }
        )
    return Checkpoint.model_validate({"version": "v1", "mig-state": devices})


def dump_checkpoint(state: Checkpoint) -> str:
    return json.dumps(state.model_dump(by_alias=True), indent=2) + "\n"


def load_checkpoint(text: str, source: str = "<checkpoint>") -> Checkpoint:
    try:
        data: Any = json.loads(text)
        return Checkpoint.model_validate(data)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}:{error.lineno}: not valid JSON: {error.msg}") from error
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{source}: {problems}") from error


def restore_plan(state: Checkpoint, gpus: Sequence[GpuState], *, mode_only: bool = False) -> Plan:
    """The changes that bring the node back to ``state`` (GPUs matched by UUID)."""
    by_uuid = {g.info.uuid: g for g in gpus}
    changes = []
    targets: dict[int, Target] = {}
    for device in state.mig_state:
        gpu = by_uuid.get(device.uuid)
        if gpu is None or gpu.mode is None:
            raise ConfigError(f"checkpoint names GPU {device.uuid}, which this node does not have")
        wanted: Counter[str] = Counter()
        creations = []
        for gi in device.gpu_instances:
            profile = resolve(parse_profile(gi.profile), gpu.profiles)
            sizes = tuple(parse_profile(ci).compute_slices for ci in gi.compute_instances)
            creations.append(Creation(profile, gi.start, sizes))
            wanted.update(gi.compute_instances)
        target = Target(device.mig_enabled, dict(wanted))
        targets[gpu.index] = target
        mode_ok = not gpu.mode.change_pending and gpu.mode.enabled is device.mig_enabled
        have = sorted(
            (gi.profile_name, gi.placement.start, tuple(c.name for c in gi.compute_instances))
            for gi in gpu.instances
        )
        want = sorted(
            (gi.profile, gi.start, tuple(gi.compute_instances)) for gi in device.gpu_instances
        )
        if mode_ok and (not device.mig_enabled or have == want):
            continue
        if mode_only and mode_ok:
            continue
        creations.sort(key=lambda c: (-c.profile.memory_slices, -c.profile.slice_count, c.start))
        changes.append(
            GpuChange(
                gpu.index,
                gpu.label,
                "differs from the checkpoint",
                set_mode=None if mode_ok else device.mig_enabled,
                clear=bool(gpu.instances),
                create=tuple(creations) if device.mig_enabled and not mode_only else None,
                target=target,
            )
        )
    return Plan(tuple(changes), targets)
