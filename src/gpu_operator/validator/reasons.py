"""Why a gating file is most likely missing: a pure function of which files exist, so the
message an init container prints every 30 s names the step that blocks and what to look at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gpu_operator.names import GPU_RESOURCE, MIG_RESOURCE_PREFIX
from gpu_operator.validator.status import (
    CUDA_READY,
    DRIVER_CTR_READY,
    DRIVER_READY,
    PLUGIN_READY,
    TOOLKIT_READY,
)

_CHAIN = [DRIVER_READY, TOOLKIT_READY, CUDA_READY, PLUGIN_READY]

_OWN_REASON = {
    DRIVER_CTR_READY: "the driver pod on this node is not Ready (startup probe: kernel module "
    "not loaded or nvidia-smi failing; see the nvidia-driver-daemonset pod's log)",
    DRIVER_READY: "the driver validation has not passed (driver-validation init container of "
    "nvidia-operator-validator: no driver on the host and no driver container, or nvidia-smi "
    "fails)",
    TOOLKIT_READY: "the toolkit validation has not passed (the container toolkit has not "
    "configured the runtime yet, or a container under the nvidia runtime cannot run "
    "nvidia-smi; see nvidia-container-toolkit-daemonset and toolkit-validation)",
    CUDA_READY: "the CUDA validation pod nvidia-cuda-validator-* on this node has not "
    "Succeeded (see its cuda-validation init container log)",
    PLUGIN_READY: f"the node does not advertise {GPU_RESOURCE} or {MIG_RESOURCE_PREFIX}* yet "
    "(device plugin not registered with the kubelet; see nvidia-device-plugin-daemonset)",
}


def likely_reason(path: Path, exists: Callable[[Path], bool] = Path.exists) -> str:
    """One sentence: ``<file> missing: <most likely reason>``."""
    name = path.name
    here = path.parent
    if name in _CHAIN:
        for earlier in _CHAIN[: _CHAIN.index(name)]:
            if not exists(here / earlier):
                return (
                    f"{name} missing: {earlier} is missing too, so the earlier step blocks: "
                    f"{_OWN_REASON[earlier]}"
                )
    if name == DRIVER_READY and not exists(here / DRIVER_CTR_READY):
        return (
            f"{name} missing: {DRIVER_CTR_READY} is missing too: {_OWN_REASON[DRIVER_CTR_READY]}, "
            "or there is no driver installed on the host"
        )
    if name in _OWN_REASON:
        return f"{name} missing: {_OWN_REASON[name]}"
    if not exists(here):
        return f"{name} missing: its directory {here} does not exist (hostPath not mounted?)"
    return f"{name} missing: nothing has created it yet"
