"""Simulated node layouts: named presets and the free form ``MODEL[xCOUNT][,MODEL[xCOUNT]]``.

A layout says which GPUs a node has, in PCI order, how they hang off the PCIe tree and NUMA
nodes, and how they are joined by NVLink. It is pure data; ``state.py`` turns it into the
initial state of a simulated node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.fake.catalogue import MODELS, ModelSpec, find_model


@dataclass(frozen=True)
class NodeLayout:
    """GPUs of a node and how they are connected."""

    models: tuple[ModelSpec, ...]
    nvlinks_per_gpu: int = 0
    nvswitch: bool = False
    """With NVSwitch every GPU's links go to switches and every GPU pair is joined through them."""
    gpus_per_pcie_switch: int = 1
    gpus_per_numa_node: int = 0
    """0 means one NUMA node for the whole machine (and NVML reports none)."""


PRESETS: dict[str, NodeLayout] = {
    "dgx-a100": NodeLayout(
        (MODELS["A100-SXM4-40GB"],) * 8,
        nvlinks_per_gpu=12,
        nvswitch=True,
        gpus_per_pcie_switch=2,
        gpus_per_numa_node=4,
    ),
    "hgx-h100": NodeLayout(
        (MODELS["H100-SXM5-80GB"],) * 8,
        nvlinks_per_gpu=18,
        nvswitch=True,
        gpus_per_pcie_switch=2,
        gpus_per_numa_node=4,
    ),
    "h200": NodeLayout((MODELS["H200-141GB"],)),
    "a30x4": NodeLayout((MODELS["A30-24GB"],) * 4, gpus_per_pcie_switch=2, gpus_per_numa_node=2),
    "t4": NodeLayout((MODELS["T4"],)),
}

_ITEM = re.compile(r"(?P<model>[A-Za-z0-9][A-Za-z0-9-]*?)(?:x(?P<count>\d+))?")


def parse_layout(spec: str) -> NodeLayout:
    """Resolve a preset or a ``MODEL[xCOUNT],...`` list; ``ConfigError`` names the bad part."""
    text = spec.strip()
    if text.lower() in PRESETS:
        return PRESETS[text.lower()]
    models: list[ModelSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.fullmatch(item)
        model = None
        count = 1
        if match:
            model = find_model(match["model"])
            if match["count"] is not None:
                count = int(match["count"])
            if model is None and match["count"] is not None:
                # A model name may itself end in "xN"-like text; try the whole item too.
                model, count = find_model(item), 1
        if model is None:
            known = ", ".join(sorted(PRESETS)) + "; models: " + ", ".join(MODELS)
            raise ConfigError(
                f"GPU_OPERATOR_SIM: unknown GPU model or preset {item!r} in {spec!r} "
                f"(presets: {known})"
            )
        if not 1 <= count <= 16:
            raise ConfigError(f"GPU_OPERATOR_SIM: GPU count in {item!r} must be 1..16, got {count}")
        models.extend([model] * count)
    if len(models) > 16:
        raise ConfigError(f"GPU_OPERATOR_SIM: {spec!r} asks for {len(models)} GPUs; at most 16")
    return NodeLayout(tuple(models))
