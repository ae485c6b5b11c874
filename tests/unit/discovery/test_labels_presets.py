"""Whole label sets for every simulated preset × MIG strategy × sharing config, compared
exactly with expectations written by hand from upstream's rules (reference §3.1): the full-GPU
labels, ``-SHARED`` products, replicas and sharing strategies, and ``mig.strategy``."""

from __future__ import annotations

import pytest

from helpers.discovery import CUDA_LABELS, LabelSim

# preset → product, count, memory MiB, family, compute major, minor, mig.capable
PRESETS = {
    "dgx-a100": ("NVIDIA-A100-SXM4-40GB", "8", "40960", "ampere", "8", "0", "true"),
    "hgx-h100": ("NVIDIA-H100-80GB-HBM3", "8", "81559", "hopper", "9", "0", "true"),
    "h200": ("NVIDIA-H200", "1", "143771", "hopper", "9", "0", "true"),
    "a30x4": ("NVIDIA-A30", "4", "24576", "ampere", "8", "0", "true"),
    "t4": ("Tesla-T4", "1", "15360", "turing", "7", "5", "false"),
}

SHARING = {
    "no sharing": ("", {}),
    "time-slicing 4 replicas": (
        "sharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n",
        {
            "nvidia.com/gpu.replicas": "4",
            "nvidia.com/gpu.sharing-strategy": "time-slicing",
            "suffix": "-SHARED",
        },
    ),
    "time-slicing with renameByDefault": (
        "sharing:\n  timeSlicing:\n    renameByDefault: true\n    resources:\n"
        "    - name: gpu\n      replicas: 4\n",
        {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"},
    ),
    "mps 2 replicas": (
        "sharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n",
        {
            "nvidia.com/gpu.replicas": "2",
            "nvidia.com/gpu.sharing-strategy": "mps",
            "nvidia.com/mps.capable": "true",
            "suffix": "-SHARED",
        },
    ),
    # Upstream's GFD drops a per-resource rename (DisableResourceNamingInConfig): the GPU is
    # shared under its own name, so the product gets -SHARED.
    "time-slicing with a per-resource rename": (
        "sharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n"
        "      rename: gpu-ts\n      replicas: 3\n",
        {
            "nvidia.com/gpu.replicas": "3",
            "nvidia.com/gpu.sharing-strategy": "time-slicing",
            "suffix": "-SHARED",
        },
    ),
}


def expected_full_gpu_node(preset: str, sharing: str, strategy: str) -> dict[str, str]:
    product, count, memory, family, major, minor, mig_capable = PRESETS[preset]
    changes = dict(SHARING[sharing][1])
    suffix = changes.pop("suffix", "")
    labels = {
        **CUDA_LABELS,
        "nvidia.com/gpu.machine": "DGX-A100",
        "nvidia.com/gpu.mode": "compute",  # a 3D controller (PCI class 0x0302)
        "nvidia.com/vgpu.present": "false",
        "nvidia.com/mps.capable": "false",
        "nvidia.com/mig.capable": mig_capable,
        "nvidia.com/gpu.product": product + suffix,
        "nvidia.com/gpu.count": count,
        "nvidia.com/gpu.memory": memory,
        "nvidia.com/gpu.family": family,
        "nvidia.com/gpu.compute.major": major,
        "nvidia.com/gpu.compute.minor": minor,
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
    }
    labels.update(changes)
    if strategy != "none":
        labels["nvidia.com/mig.strategy"] = strategy
    return labels


@pytest.mark.parametrize("sharing", list(SHARING))
@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_a_node_without_mig_gets_upstreams_full_gpu_labels(
    label_sim: LabelSim, preset: str, strategy: str, sharing: str
) -> None:
    result = label_sim(preset, strategy=strategy, config=SHARING[sharing][0])

    assert result.labels == expected_full_gpu_node(preset, sharing, strategy)
    assert result.warnings == ()


def test_the_issue_example_dgx_a100_labels_include_the_documented_values(
    label_sim: LabelSim,
) -> None:
    labels = label_sim("dgx-a100").labels

    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.memory"] == "40960"
    assert labels["nvidia.com/gpu.family"] == "ampere"
    assert labels["nvidia.com/mig.capable"] == "true"
    assert "nvidia.com/mig.strategy" not in labels


def test_an_unreadable_machine_type_is_labelled_unknown(label_sim: LabelSim) -> None:
    labels = label_sim("t4", machine_type=None).labels

    assert labels["nvidia.com/gpu.machine"] == "unknown"


def test_the_machine_type_is_sanitised_like_a_product_name(label_sim: LabelSim) -> None:
    labels = label_sim("t4", machine_type="  g4dn.xlarge (HVM)\n").labels

    assert labels["nvidia.com/gpu.machine"] == "g4dn.xlarge-HVM"
