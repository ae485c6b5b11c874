"""The driver's MIG rules, as the simulator enforces them on one GPU's state.

Pure functions over the GPU's JSON document; every refusal raises ``pynvml.NVMLError`` with the
code the real driver returns:

- a start not in the profile's placement list → ``INVALID_ARGUMENT``;
- a range that overlaps an existing GI, a profile at its instance cap, or engines (compute
  slices, copy engines, decoders, JPEG, OFA) beyond the GPU's budget → ``INSUFFICIENT_RESOURCES``
  (the engine budget is what limits ``+me`` profiles to one per GPU);
- a profile id the model lacks → ``INVALID_ARGUMENT`` for create/placement calls;
- destroying an instance that holds compute instances or runs processes → ``IN_USE``.

GI ids follow the driver's numbering, a binary heap over the memory slices: the whole GPU is
0, halves 1–2, quarters 3–6, eighths 7–14 (1g at start ``s`` has id ``7 + s``).
"""

from __future__ import annotations

from typing import Any

import pynvml

from gpu_operator.gpu.fake.catalogue import (
    CiProfileSpec,
    GiProfileSpec,
    ModelSpec,
    ci_profiles_for,
)

Doc = dict[str, Any]


def fail(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


def gi_profile_by_id(model: ModelSpec, profile_id: int) -> GiProfileSpec:
    for p in model.gi_profiles:
        if p.id == profile_id:
            return p
    raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)


def ci_profile_by_id(model: ModelSpec, gi: GiProfileSpec, ci_profile_id: int) -> CiProfileSpec:
    for c in ci_profiles_for(model, gi):
        if c.id == ci_profile_id:
            return c
    raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)


def heap_gi_id(model: ModelSpec, start: int, size: int) -> int:
    return (model.memory_slices // size - 1) + start // size


def _engine_use(model: ModelSpec, gis: list[Doc]) -> dict[str, int]:
    use = {"slices": 0, "ce": 0, "dec": 0, "jpg": 0, "ofa": 0}
    for gi in gis:
        p = gi_profile_by_id(model, gi["profileId"])
        use["slices"] += p.slices
        use["ce"] += p.copy_engines
        use["dec"] += p.decoders
        use["jpg"] += p.jpegs
        use["ofa"] += p.ofas
    return use


def _fits(model: ModelSpec, gpu: Doc, profile: GiProfileSpec, start: int) -> bool:
    """Whether a GI of ``profile`` could be created at ``start`` now (start already legal)."""
    gis: list[Doc] = gpu["gpuInstances"]
    end = start + profile.size
    if any(start < g["start"] + g["size"] and g["start"] < end for g in gis):
        return False
    if sum(1 for g in gis if g["profileId"] == profile.id) >= profile.instances:
        return False
    full = model.full_profile()
    use = _engine_use(model, gis)
    return (
        use["slices"] + profile.slices <= full.slices
        and use["ce"] + profile.copy_engines <= full.copy_engines
        and use["dec"] + profile.decoders <= full.decoders
        and use["jpg"] + profile.jpegs <= full.jpegs
        and use["ofa"] + profile.ofas <= full.ofas
    )


def require_mig_enabled(gpu: Doc) -> None:
    if gpu["migCurrent"] != pynvml.NVML_DEVICE_MIG_ENABLE:
        raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)


def remaining_gi_capacity(model: ModelSpec, gpu: Doc, profile_id: int) -> int:
    """How many more GIs of this profile fit now, creating them greedily from the top."""
    profile = gi_profile_by_id(model, profile_id)
    if gpu["migCurrent"] != pynvml.NVML_DEVICE_MIG_ENABLE:
        return 0
    trial = {"gpuInstances": list(gpu["gpuInstances"])}
    count = 0
    while True:
        start = next((s for s in reversed(profile.starts) if _fits(model, trial, profile, s)), None)
        if start is None:
            return count
        trial["gpuInstances"].append(
            {"profileId": profile.id, "start": start, "size": profile.size}
        )
        count += 1


def create_gi(model: ModelSpec, gpu: Doc, profile_id: int, start: int | None) -> Doc:
    """Create a GI; without ``start`` the driver takes the highest free legal start, which is
    why creation order matters to tools that don't pass placements (mig.md §1.6)."""
    require_mig_enabled(gpu)
    profile = gi_profile_by_id(model, profile_id)
    if start is None:
        start = next((s for s in reversed(profile.starts) if _fits(model, gpu, profile, s)), None)
        if start is None:
            raise fail(pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    elif start not in profile.starts:
        raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
    elif not _fits(model, gpu, profile, start):
        raise fail(pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    gi = {
        "id": heap_gi_id(model, start, profile.size),
        "profileId": profile.id,
        "start": start,
        "size": profile.size,
        "computeInstances": [],
    }
    gpu["gpuInstances"].append(gi)
    gpu["gpuInstances"].sort(key=lambda g: g["id"])
    return gi


def find_gi(gpu: Doc, gi_id: int) -> Doc:
    for gi in gpu["gpuInstances"]:
        if gi["id"] == gi_id:
            return gi
    raise fail(pynvml.NVML_ERROR_NOT_FOUND)


def find_ci(gi: Doc, ci_id: int) -> Doc:
    for ci in gi["computeInstances"]:
        if ci["id"] == ci_id:
            return ci
    raise fail(pynvml.NVML_ERROR_NOT_FOUND)


def _ci_fits(gi: Doc, ci_profile: CiProfileSpec, start: int) -> bool:
    cis: list[Doc] = gi["computeInstances"]
    end = start + ci_profile.slices
    if any(start < c["start"] + c["size"] and c["start"] < end for c in cis):
        return False
    return sum(1 for c in cis if c["profileId"] == ci_profile.id) < ci_profile.instances


def remaining_ci_capacity(model: ModelSpec, gi: Doc, ci_profile_id: int) -> int:
    gi_profile = gi_profile_by_id(model, gi["profileId"])
    ci_profile = ci_profile_by_id(model, gi_profile, ci_profile_id)
    trial = {"computeInstances": list(gi["computeInstances"])}
    count = 0
    while True:
        start = next((s for s in ci_profile.starts if _ci_fits(trial, ci_profile, s)), None)
        if start is None:
            return count
        trial["computeInstances"].append(
            {"profileId": ci_profile.id, "start": start, "size": ci_profile.slices}
        )
        count += 1


def create_ci(model: ModelSpec, gpu: Doc, gi: Doc, ci_profile_id: int, start: int | None) -> Doc:
    gi_profile = gi_profile_by_id(model, gi["profileId"])
    ci_profile = ci_profile_by_id(model, gi_profile, ci_profile_id)
    if start is None:
        start = next((s for s in ci_profile.starts if _ci_fits(gi, ci_profile, s)), None)
        if start is None:
            raise fail(pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    elif start not in ci_profile.starts:
        raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
    elif not _ci_fits(gi, ci_profile, start):
        raise fail(pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    used_ids = {c["id"] for c in gi["computeInstances"]}
    used_slots = {c["migIndex"] for g in gpu["gpuInstances"] for c in g["computeInstances"]}
    gpu["uuidGeneration"] += 1
    ci = {
        "id": next(i for i in range(64) if i not in used_ids),
        "profileId": ci_profile.id,
        "start": start,
        "size": ci_profile.slices,
        # The MIG device's slot among nvmlDeviceGetMigDeviceHandleByIndex indexes: the lowest
        # free one, so destroying an instance leaves a hole that iteration must skip.
        "migIndex": next(i for i in range(64) if i not in used_slots),
        "generation": gpu["uuidGeneration"],
    }
    gi["computeInstances"].append(ci)
    gi["computeInstances"].sort(key=lambda c: c["id"])
    return ci


def processes_on(gpu: Doc, gi_id: int | None = None, ci_id: int | None = None) -> list[Doc]:
    procs: list[Doc] = gpu["processes"]
    if gi_id is None:
        return procs
    return [p for p in procs if p.get("gi") == gi_id and (ci_id is None or p.get("ci") == ci_id)]


def destroy_ci(gpu: Doc, gi: Doc, ci_id: int) -> None:
    find_ci(gi, ci_id)
    if processes_on(gpu, gi["id"], ci_id):
        raise fail(pynvml.NVML_ERROR_IN_USE)
    gi["computeInstances"] = [c for c in gi["computeInstances"] if c["id"] != ci_id]


def destroy_gi(gpu: Doc, gi_id: int) -> None:
    gi = find_gi(gpu, gi_id)
    if gi["computeInstances"] or processes_on(gpu, gi_id):
        raise fail(pynvml.NVML_ERROR_IN_USE)
    gpu["gpuInstances"] = [g for g in gpu["gpuInstances"] if g["id"] != gi_id]


def set_mig_mode(model: ModelSpec, gpu: Doc, mode: int) -> int:
    """Set the pending mode and return the activation status the driver would report.

    The change takes effect at once only when the GPU is idle and the architecture toggles
    without a reset (Hopper and newer); Ampere stays pending until a GPU reset; a GPU with
    processes stays pending with status ``IN_USE``.
    """
    if not model.mig_capable:
        raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
    if mode not in (pynvml.NVML_DEVICE_MIG_DISABLE, pynvml.NVML_DEVICE_MIG_ENABLE):
        raise fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
    if mode == pynvml.NVML_DEVICE_MIG_DISABLE and gpu["gpuInstances"]:
        raise fail(pynvml.NVML_ERROR_IN_USE)
    gpu["migPending"] = mode
    if gpu["migCurrent"] == mode:
        return pynvml.NVML_SUCCESS
    if gpu["processes"]:
        return pynvml.NVML_ERROR_IN_USE
    if model.resets_for_mig:
        return pynvml.NVML_ERROR_RESET_REQUIRED
    gpu["migCurrent"] = mode
    return pynvml.NVML_SUCCESS


def reset_gpu(gpu: Doc) -> None:
    """``nvidia-smi -r``: refused while processes hold the GPU; applies a pending MIG mode and,
    like a real reset, destroys every GPU instance."""
    if gpu["processes"]:
        raise fail(pynvml.NVML_ERROR_IN_USE)
    if gpu.get("resetBlocked"):
        raise fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
    gpu["migCurrent"] = gpu["migPending"]
    gpu["gpuInstances"] = []
    gpu["lost"] = False


def mig_devices(gpu: Doc) -> list[tuple[Doc, Doc]]:
    """(GI, CI) pairs ordered by their MIG device slot."""
    pairs = [(gi, ci) for gi in gpu["gpuInstances"] for ci in gi["computeInstances"]]
    return sorted(pairs, key=lambda pair: pair[1]["migIndex"])
