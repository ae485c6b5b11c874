"""What tests and the sandbox do to a simulated node that NVML cannot: inject XIDs and ECC
errors, lose a GPU, start and stop processes, reset a GPU (``nvidia-smi -r``).

Each function changes the shared state under its lock, so every process simulating the node
sees the change at its next NVML call; events reach event sets created before the injection.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pynvml

from gpu_operator.errors import ConfigError, GpuError
from gpu_operator.gpu.fake import partitioning
from gpu_operator.gpu.fake.state import MAX_EVENTS_KEPT, Doc, StateStore

XID_GPU_FALLEN_OFF_THE_BUS = 79


def _gpu(doc: Doc, index: int) -> Doc:
    gpus: list[Doc] = doc["gpus"]
    if not 0 <= index < len(gpus):
        raise ConfigError(f"simulated node has GPUs 0..{len(gpus) - 1}; there is no GPU {index}")
    return gpus[index]


def _emit(doc: Doc, gpu: int, event_type: int, data: int, gi: int | None, ci: int | None) -> None:
    doc["eventSeq"] = int(doc["eventSeq"]) + 1
    doc["events"].append(
        {
            "seq": doc["eventSeq"],
            "gpu": gpu,
            "type": event_type,
            "data": data,
            "gi": gi,
            "ci": ci,
            "time": time.time(),
        }
    )
    del doc["events"][:-MAX_EVENTS_KEPT]


def inject_xid(
    store: StateStore, gpu: int, code: int, gi: int | None = None, ci: int | None = None
) -> None:
    """An XID critical error on a GPU, or on one of its MIG devices when ``gi`` is given."""
    if code <= 0:
        raise ConfigError(f"XID code must be a positive integer, got {code}")
    if ci is not None and gi is None:
        raise ConfigError(f"an XID on compute instance {ci} must name its GPU instance (--gi)")
    with store.update() as doc:
        target = _gpu(doc, gpu)
        if gi is not None:
            found = next((g for g in target["gpuInstances"] if g["id"] == gi), None)
            if found is None:
                raise ConfigError(f"GPU {gpu} has no GPU instance {gi}")
            if ci is not None and not any(c["id"] == ci for c in found["computeInstances"]):
                raise ConfigError(f"GPU {gpu} GPU instance {gi} has no compute instance {ci}")
        _emit(doc, gpu, pynvml.nvmlEventTypeXidCriticalError, code, gi, ci)


def inject_ecc(store: StateStore, gpu: int, *, double_bit: bool) -> None:
    with store.update() as doc:
        counters = _gpu(doc, gpu)["counters"]
        if double_bit:
            counters["eccDbeVolatile"] += 1
            counters["eccDbeAggregate"] += 1
            counters["remappedUncorrectable"] += 1
            _emit(doc, gpu, pynvml.nvmlEventTypeDoubleBitEccError, 1, None, None)
        else:
            counters["eccSbeVolatile"] += 1
            counters["eccSbeAggregate"] += 1
            _emit(doc, gpu, pynvml.nvmlEventTypeSingleBitEccError, 1, None, None)


def lose_gpu(store: StateStore, gpu: int) -> None:
    """The GPU falls off the bus: XID 79, then ``NVMLError_GpuIsLost`` on every call."""
    with store.update() as doc:
        _gpu(doc, gpu)["lost"] = True
        _emit(
            doc, gpu, pynvml.nvmlEventTypeXidCriticalError, XID_GPU_FALLEN_OFF_THE_BUS, None, None
        )


def block_reset(store: StateStore, gpu: int, blocked: bool = True) -> None:
    """The GPU can't be reset on this host (a VM without reset rights, an NVLink domain that
    resets only as a whole): ``nvidia-smi -r`` answers "not supported"; only a reboot helps."""
    with store.update() as doc:
        _gpu(doc, gpu)["resetBlocked"] = blocked


def _now(doc: Doc, clock: Callable[[], float]) -> float:
    return max(0.0, clock() - float(doc["bootTime"]))


def _set_busy(gpu: Doc, t: float) -> None:
    """Keep the busy-time accumulator that telemetry integrates in step with processes."""
    busy = bool(gpu["processes"])
    since = gpu.get("busySince")
    if busy and since is None:
        gpu["busySince"] = t
    elif not busy and since is not None:
        gpu["busyAccumS"] = float(gpu.get("busyAccumS", 0.0)) + max(0.0, t - float(since))
        gpu["busySince"] = None


def start_process(
    store: StateStore,
    gpu: int,
    *,
    gi: int | None = None,
    ci: int | None = None,
    memory_mib: int = 1024,
    name: str = "python3",
    clock: Callable[[], float] = time.time,
) -> int:
    """Start a simulated CUDA process on a GPU or on one MIG device; returns its pid."""
    with store.update() as doc:
        target = _gpu(doc, gpu)
        if target["migCurrent"] == pynvml.NVML_DEVICE_MIG_ENABLE and target["gpuInstances"]:
            if gi is None:
                raise ConfigError(
                    f"GPU {gpu} is in MIG mode: name the GPU instance (--gi) to run on"
                )
            found = next((g for g in target["gpuInstances"] if g["id"] == gi), None)
            if found is None or not found["computeInstances"]:
                raise ConfigError(f"GPU {gpu} has no GPU instance {gi} with a compute instance")
            if ci is None:
                ci = int(found["computeInstances"][0]["id"])
        elif gi is not None:
            raise ConfigError(f"GPU {gpu} has no MIG devices; --gi is only for MIG mode")
        pid = int(doc["nextPid"])
        doc["nextPid"] = pid + 1
        target["processes"].append(
            {"pid": pid, "usedMemoryMiB": memory_mib, "gi": gi, "ci": ci, "name": name}
        )
        _set_busy(target, _now(doc, clock))
        return pid


def stop_processes(
    store: StateStore, gpu: int, pid: int | None = None, *, clock: Callable[[], float] = time.time
) -> int:
    """Stop one process (or all on the GPU when ``pid`` is None); returns how many stopped."""
    with store.update() as doc:
        target = _gpu(doc, gpu)
        before = len(target["processes"])
        target["processes"] = [
            p for p in target["processes"] if pid is not None and p["pid"] != pid
        ]
        stopped = before - len(target["processes"])
        if pid is not None and stopped == 0:
            raise ConfigError(f"GPU {gpu} has no process {pid}")
        _set_busy(target, _now(doc, clock))
        return stopped


def reset_gpu(store: StateStore, gpu: int) -> None:
    """What ``nvidia-smi -r`` does: refused while processes run (``GpuError`` with code IN_USE)."""
    with store.update() as doc:
        target = _gpu(doc, gpu)
        try:
            partitioning.reset_gpu(target)
        except pynvml.NVMLError as error:
            raise GpuError(
                f"GPU {gpu} could not be reset: {error} "
                f"({len(target['processes'])} process(es) use it)",
                code=error.value,
                nvml_name=type(error).__name__,
            ) from error
