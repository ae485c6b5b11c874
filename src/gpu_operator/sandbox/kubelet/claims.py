"""A pod's ResourceClaims from the sandbox kubelet's side, in one call for the pod runner: read
each claim the pod references (through the caller's API reader), prepare them all with their
drivers (``Kubelet.prepare_claims``), and give each container what a CDI-enabled runtime would:
its CDI device ids, the CDI edits' environment, and the GPUs behind the device nodes (so the
simulated workload holds them in NVML, as a container that opened ``/dev/nvidia3`` would); with
a MIG instance's ``/dev/nvidia-caps`` access nodes, that MIG device rather than its GPU."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.sandbox.kubelet import AdmissionError, Kubelet
from gpu_operator.sandbox.kubelet.cdi import SPEC_DIRS, resolve
from gpu_operator.sandbox.kubelet.dra import claim_name
from gpu_operator.toolkit.cdi_generate import mig_cap_minor

Obj = Mapping[str, Any]
CDI_DEVICES_ENV = "GPU_OPERATOR_CDI_DEVICES"
"""Ours: the CDI device ids the runtime injected, comma-separated (the sandbox's stand-in for
the CRI ``CDIDevices`` a real runtime receives)."""


@dataclass
class ContainerDevices:
    cdi_ids: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    device_ids: list[str] = field(default_factory=list)
    """GPU or MIG UUIDs behind the CDI device nodes (what the simulated workload holds)."""


def _devices_behind(sim: str | None, nodes: Sequence[str]) -> list[str]:
    """The devices a container with these device nodes has: a GPU's MIG device when the
    access nodes of its GPU and compute instance are there too (``/dev/nvidia-caps``, as the
    driver's capability minors number them), else the whole GPU."""
    if not sim or not Path(sim).exists() or not nodes:
        return []
    given = set(nodes)
    out = []
    with Nvml.open(HardwareSettings(sim=sim)) as nvml:
        for gpu in nvml.gpus():
            if f"/dev/nvidia{gpu.minor_number}" not in given:
                continue
            migs = [
                m.uuid
                for m in nvml.mig_devices(gpu.index)
                if {
                    _cap(mig_cap_minor(gpu.minor_number, m.gpu_instance_id)),
                    _cap(mig_cap_minor(gpu.minor_number, m.gpu_instance_id, m.compute_instance_id)),
                }
                <= given
            ]
            out += migs or [gpu.uuid]
    return out


def _cap(minor: int) -> str:
    return f"/dev/nvidia-caps/nvidia-cap{minor}"


def prepare_pod_claims(
    kubelet: Kubelet,
    pod: Obj,
    read_claim: Callable[[str], Obj | None],
    node_root: Path,
    sim: str | None,
) -> dict[str, ContainerDevices]:
    """Container name → its devices; ``AdmissionError`` while a claim is not ready."""
    claims: dict[str, Any] = {}
    for pod_claim in (pod.get("spec") or {}).get("resourceClaims") or []:
        name = claim_name(pod, pod_claim)
        if name is None:
            raise AdmissionError(f"waiting for the ResourceClaim of {pod_claim.get('name')!r}")
        found = read_claim(name)
        if found is None:
            raise AdmissionError(f"ResourceClaim {name} not found")
        claims[pod_claim["name"]] = found
    prepared = kubelet.prepare_claims(dict(pod), claims)
    dirs = [node_root / d for d in SPEC_DIRS]
    out = {}
    containers = [
        *((pod.get("spec") or {}).get("initContainers") or []),
        *((pod.get("spec") or {}).get("containers") or []),
    ]
    for container in containers:
        ids = prepared.cdi_ids(container)
        if not ids:
            continue
        edits = resolve(ids, dirs)
        env = {**edits.env, CDI_DEVICES_ENV: ",".join(ids)}
        devices = _devices_behind(sim, edits.device_nodes)
        out[container["name"]] = ContainerDevices(ids, env, devices)
    return out
