"""A pod's ResourceClaims from the sandbox kubelet's side, in one call for the pod runner: read
each claim the pod references (through the caller's API reader), prepare them all with their
drivers (``Kubelet.prepare_claims``), and give each container what a CDI-enabled runtime would:
its CDI device ids, the CDI edits' environment, and the GPUs behind the device nodes (so the
simulated workload holds them in NVML, as a container that opened ``/dev/nvidia3`` would)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.sandbox.kubelet import AdmissionError, Kubelet
from gpu_operator.sandbox.kubelet.cdi import SPEC_DIRS, resolve
from gpu_operator.sandbox.kubelet.dra import claim_name

Obj = Mapping[str, Any]
CDI_DEVICES_ENV = "GPU_OPERATOR_CDI_DEVICES"
"""Ours: the CDI device ids the runtime injected, comma-separated (the sandbox's stand-in for
the CRI ``CDIDevices`` a real runtime receives)."""


@dataclass
class ContainerDevices:
    cdi_ids: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    device_ids: list[str] = field(default_factory=list)
    """GPU UUIDs behind the CDI device nodes (what the simulated workload holds)."""


def _uuids_by_node(sim: str | None) -> dict[str, str]:
    if not sim or not Path(sim).exists():
        return {}
    with Nvml.open(HardwareSettings(sim=sim)) as nvml:
        return {f"/dev/nvidia{g.minor_number}": g.uuid for g in nvml.gpus()}


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
    uuids = _uuids_by_node(sim)
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
        devices = [uuids[n] for n in edits.device_nodes if n in uuids]
        out[container["name"]] = ContainerDevices(ids, env, devices)
    return out
