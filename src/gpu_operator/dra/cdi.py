"""A prepared claim's CDI spec, written by the toolkit's generator (``toolkit.cdi_generate``):
one spec per claim, kind ``k8s.gpu.nvidia.com/claim`` (upstream's claim kind), one device per
allocated GPU named as upstream names a claim's device (``<claim uid>-gpu-<minor>``), carrying
the GPU's device node and the driver's common edits (control nodes, libraries, hooks,
``NVIDIA_VISIBLE_DEVICES=void``). The file is ``k8s.gpu.nvidia.com-claim_<uid>.yaml`` under the
CDI root (the CDI cache's ``GenerateTransientSpecName`` and default extension, as upstream's
``WriteSpec`` names it). A dynamic MIG device is named ``<claim uid>-<its DRA device name>`` and
carries the generator's MIG edits (the parent's device node and the instance's
``/dev/nvidia-caps`` access nodes). Pure: the spec and the ids, no file written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.devices import device_name
from gpu_operator.gpu.records import GpuInfo, MigDevice
from gpu_operator.toolkit.cdi_generate import CdiOptions, generate
from gpu_operator.toolkit.driver_tree import DriverTree

CDI_VENDOR = f"k8s.{DRIVER_NAME}"
CDI_CLAIM_CLASS = "claim"
CDI_CLAIM_KIND = f"{CDI_VENDOR}/{CDI_CLAIM_CLASS}"


def claim_device_name(claim_uid: str, gpu: GpuInfo) -> str:
    return f"{claim_uid}-{device_name(gpu)}"


def cdi_id(claim_uid: str, gpu: GpuInfo) -> str:
    """The fully qualified CDI device id the kubelet hands to the runtime."""
    return f"{CDI_CLAIM_KIND}={claim_device_name(claim_uid, gpu)}"


def mig_cdi_id(claim_uid: str, device: str) -> str:
    """The CDI device id of a dynamic MIG device (``device``: its DRA name)."""
    return f"{CDI_CLAIM_KIND}={claim_uid}-{device}"


def spec_file_name(claim_uid: str) -> str:
    """The CDI cache's ``GenerateTransientSpecName(vendor, class, uid)`` + ``.yaml``."""
    return f"{CDI_VENDOR}-{CDI_CLAIM_CLASS}_{claim_uid}.yaml"


def claim_spec(
    claim_uid: str,
    gpus: Sequence[GpuInfo],
    tree: DriverTree,
    options: CdiOptions,
    migs: Sequence[tuple[str, GpuInfo, MigDevice]] = (),
) -> dict[str, Any]:
    """The CDI spec for exactly ``gpus`` and the MIG devices ``migs`` ((DRA device name,
    parent GPU, MIG device) each), named for ``claim_uid``."""
    options = replace(
        options,
        vendor=CDI_VENDOR,
        device_class=CDI_CLAIM_CLASS,
        name_strategies=("uuid",),
        all_device=False,
    )
    parents = {g.uuid: g for _, g, _ in migs if g.uuid not in {x.uuid for x in gpus}}
    by_parent: dict[int, list[MigDevice]] = {}
    for _, parent, mig in migs:
        by_parent.setdefault(parent.index, []).append(mig)
    spec = generate([*gpus, *parents.values()], by_parent, tree, options)
    names = {g.uuid: claim_device_name(claim_uid, g) for g in gpus}
    names.update({mig.uuid: f"{claim_uid}-{name}" for name, _, mig in migs})
    spec["devices"] = [d for d in spec["devices"] if d["name"] in names]
    for device in spec["devices"]:
        device["name"] = names[device["name"]]
    return spec
