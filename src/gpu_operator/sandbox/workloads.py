"""What a GPU workload's container does to its node's simulated GPUs: while it runs, a CUDA process
holds each device the kubelet allocated to it (the device plugin's ids: ``MIG-…``, ``GPU-…``,
``GPU-…::n`` for a time-sliced replica), so NVML lists it, the exporter sees the GPU busy and
the MIG manager finds the GPU in use, as on a real node where a training job has the device
open."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.podresources import device_uuid

Held = tuple[int, int]
"""(GPU index, pid) of one simulated CUDA process."""


def hold_devices(
    env: Mapping[str, str], device_ids: Iterable[str], name: str = "cuda-workload"
) -> list[Held]:
    """Start one simulated CUDA process on each allocated device; raises ``GpuOperatorError``
    naming a device the node doesn't have."""
    sim = env.get("GPU_OPERATOR_SIM")
    uuids = list(dict.fromkeys(map(device_uuid, device_ids)))
    if not sim or not uuids or not Path(sim).exists():
        return []
    where: dict[str, tuple[int, int | None, int | None]] = {}
    with Nvml.open(HardwareSettings(sim=sim)) as nvml:
        for index in range(nvml.device_count()):
            where[nvml.gpu(index).uuid] = (index, None, None)
            for mig in nvml.mig_devices(index):
                where[mig.uuid] = (index, mig.gpu_instance_id, mig.compute_instance_id)
    missing = [u for u in uuids if u not in where]
    if missing:
        raise ConfigError(f"allocated device(s) {', '.join(missing)} are not on this node")
    store = StateStore(Path(sim))
    held: list[Held] = []
    try:
        for uuid in uuids:
            gpu, gi, ci = where[uuid]
            held.append((gpu, faults.start_process(store, gpu, gi=gi, ci=ci, name=name)))
    except GpuOperatorError:
        release(env, held)
        raise
    return held


def release(env: Mapping[str, str], held: list[Held]) -> None:
    """Stop the processes ``hold_devices`` started (a reset or lost GPU may have ended them)."""
    sim = env.get("GPU_OPERATOR_SIM")
    if not sim or not held:
        return
    store = StateStore(Path(sim))
    for gpu, pid in held:
        with contextlib.suppress(GpuOperatorError):
            faults.stop_processes(store, gpu, pid)
    held.clear()
