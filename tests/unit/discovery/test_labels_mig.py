"""MIG labels on simulated nodes after real layouts, against hand-written expectations: the
``mixed`` ``nvidia.com/mig-<profile>.*`` family, the ``single`` override and ``-MIG-INVALID``,
sharing of MIG resources, and MPS refused on MIG-enabled GPUs (reference §3.1)."""

from __future__ import annotations

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.mig.spec_v1 import load_spec
from helpers.discovery import CUDA_LABELS, LabelSim, apply_entries

A100 = "NVIDIA-A100-SXM4-40GB"
A100_GPU_LABELS = {
    **CUDA_LABELS,
    "nvidia.com/gpu.machine": "DGX-A100",
    "nvidia.com/gpu.mode": "compute",
    "nvidia.com/vgpu.present": "false",
    "nvidia.com/mps.capable": "false",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/gpu.product": A100,
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.memory": "40960",
    "nvidia.com/gpu.family": "ampere",
    "nvidia.com/gpu.compute.major": "8",
    "nvidia.com/gpu.compute.minor": "0",
    # MIG-enabled parents are labelled without sharing: replicas 0 (upstream).
    "nvidia.com/gpu.replicas": "0",
    "nvidia.com/gpu.sharing-strategy": "none",
}


def mig_family(key: str, product: str, count: int, attrs: tuple[int, ...]) -> dict[str, str]:
    memory, sms, gi, ci, copy, dec, enc, jpeg, ofa = attrs
    return {
        f"{key}.product": product,
        f"{key}.count": str(count),
        f"{key}.replicas": "1",
        f"{key}.sharing-strategy": "none",
        f"{key}.memory": str(memory),
        f"{key}.multiprocessors": str(sms),
        f"{key}.slices.gi": str(gi),
        f"{key}.slices.ci": str(ci),
        f"{key}.engines.copy": str(copy),
        f"{key}.engines.decoder": str(dec),
        f"{key}.engines.encoder": str(enc),
        f"{key}.engines.jpeg": str(jpeg),
        f"{key}.engines.ofa": str(ofa),
    }


# memory MiB, SMs, GI slices, CI slices, CE, DEC, ENC, JPG, OFA (reference mig.md, A100-40GB)
A100_1G_5GB = (4864, 14, 1, 1, 1, 0, 0, 0, 0)
A100_2G_10GB = (9984, 28, 2, 2, 2, 1, 0, 0, 0)
A100_3G_20GB = (20096, 42, 3, 3, 3, 2, 0, 0, 0)


def test_mixed_all_balanced_on_dgx_a100_labels_each_profile_family(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="mixed", layout="all-balanced")

    assert result.labels == {
        **A100_GPU_LABELS,
        "nvidia.com/mig.strategy": "mixed",
        **mig_family("nvidia.com/mig-1g.5gb", f"{A100}-MIG-1g.5gb", 16, A100_1G_5GB),
        **mig_family("nvidia.com/mig-2g.10gb", f"{A100}-MIG-2g.10gb", 8, A100_2G_10GB),
        **mig_family("nvidia.com/mig-3g.20gb", f"{A100}-MIG-3g.20gb", 8, A100_3G_20GB),
    }


def test_single_with_all_balanced_is_mig_invalid_with_zero_counts(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="single", layout="all-balanced")

    assert result.labels == {
        **A100_GPU_LABELS,
        "nvidia.com/mig.strategy": "single",
        "nvidia.com/gpu.product": f"{A100}-MIG-INVALID",
        "nvidia.com/gpu.count": "0",
        "nvidia.com/gpu.replicas": "0",
        "nvidia.com/gpu.memory": "0",
        "nvidia.com/gpu.sharing-strategy": "",
    }
    assert result.warnings == (
        "Invalid configuration detected for mig-strategy=single: "
        "more than one MIG device type present on node",
    )


def test_single_with_all_1g_5gb_labels_the_mig_devices_as_the_gpu(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="single", layout='{"1g.5gb": 7}')

    assert result.labels == {
        **A100_GPU_LABELS,
        "nvidia.com/mig.strategy": "single",
        **mig_family("nvidia.com/gpu", f"{A100}-MIG-1g.5gb", 56, A100_1G_5GB),
    }


def test_single_with_time_sliced_mig_devices_gets_a_shared_product(label_sim: LabelSim) -> None:
    config = (
        "sharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 3\n"
    )
    labels = label_sim("dgx-a100", strategy="single", layout='{"1g.5gb": 7}', config=config).labels

    assert labels["nvidia.com/gpu.product"] == f"{A100}-MIG-1g.5gb-SHARED"
    assert labels["nvidia.com/gpu.replicas"] == "3"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/gpu.count"] == "56"


@pytest.mark.parametrize(
    ("rename_by_default", "product"),
    [
        pytest.param("false", f"{A100}-MIG-1g.5gb-SHARED", id="not renamed: -SHARED product"),
        pytest.param("true", f"{A100}-MIG-1g.5gb", id="renameByDefault: plain product"),
    ],
)
def test_mixed_time_slicing_of_one_profile_changes_only_that_family(
    label_sim: LabelSim, rename_by_default: str, product: str
) -> None:
    config = (
        f"sharing:\n  timeSlicing:\n    renameByDefault: {rename_by_default}\n    resources:\n"
        "    - name: mig-1g.5gb\n      replicas: 2\n"
    )
    labels = label_sim("dgx-a100", strategy="mixed", layout="all-balanced", config=config).labels

    assert labels["nvidia.com/mig-1g.5gb.product"] == product
    assert labels["nvidia.com/mig-1g.5gb.replicas"] == "2"
    assert labels["nvidia.com/mig-1g.5gb.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/mig-2g.10gb.product"] == f"{A100}-MIG-2g.10gb"
    assert labels["nvidia.com/mig-2g.10gb.replicas"] == "1"
    assert labels["nvidia.com/gpu.replicas"] == "0"
    assert "nvidia.com/mig-1g.5gb.shared.count" not in labels


def test_strategy_none_with_mig_enabled_labels_only_the_physical_gpus(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="none", layout="all-balanced")

    assert result.labels == A100_GPU_LABELS


def test_mig_enabled_without_instances_is_invalid_for_single(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="single", layout="enabled-empty")

    assert result.labels["nvidia.com/gpu.product"] == f"{A100}-MIG-INVALID"
    assert result.labels["nvidia.com/gpu.count"] == "0"
    assert "at least one MIG device is enabled but empty" in result.warnings[0]


def test_mig_enabled_without_instances_adds_no_mig_family_for_mixed(label_sim: LabelSim) -> None:
    result = label_sim("dgx-a100", strategy="mixed", layout="enabled-empty")

    assert result.labels == {**A100_GPU_LABELS, "nvidia.com/mig.strategy": "mixed"}


def test_single_with_mig_on_only_some_gpus_is_invalid(label_sim: LabelSim) -> None:
    text = (
        "version: v1\nmig-configs:\n  half:\n    - devices: [0, 1, 2, 3]\n      mig-enabled: true\n"
        '      mig-devices: {"1g.5gb": 7}\n    - devices: [4, 5, 6, 7]\n      mig-enabled: false\n'
    )
    half = apply_entries(load_spec(text, "test.yaml").select("half"))

    labels = label_sim("dgx-a100", strategy="single", prepare=half).labels

    assert labels["nvidia.com/gpu.product"] == f"{A100}-MIG-INVALID"
    # Full GPUs remain on the node, so the full-GPU labeler (with sharing) describes the model.
    assert labels["nvidia.com/gpu.family"] == "ampere"


def test_mps_sharing_on_a_node_with_mig_enabled_is_a_config_error(label_sim: LabelSim) -> None:
    config = "sharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n"

    with pytest.raises(ConfigError, match="MPS sharing can't be used with MIG-enabled GPUs"):
        label_sim("dgx-a100", strategy="single", layout='{"1g.5gb": 7}', config=config)


def test_an_me_profile_is_spelled_as_its_resource_in_keys_and_product(label_sim: LabelSim) -> None:
    labels = label_sim("dgx-a100", strategy="mixed", layout='{"1g.5gb+me": 1}').labels

    assert {k: v for k, v in labels.items() if k.startswith("nvidia.com/mig-")} == mig_family(
        "nvidia.com/mig-1g.5gb.me", f"{A100}-MIG-1g.5gb.me", 8, (4864, 14, 1, 1, 1, 1, 0, 1, 1)
    )


def test_mixed_all_balanced_on_h200_uses_its_own_profile_names(label_sim: LabelSim) -> None:
    labels = label_sim("h200", strategy="mixed", layout="all-balanced").labels
    h200 = "NVIDIA-H200"

    assert {k: v for k, v in labels.items() if k.startswith("nvidia.com/mig-")} == {
        **mig_family(
            "nvidia.com/mig-1g.18gb", f"{h200}-MIG-1g.18gb", 2, (16384, 16, 1, 1, 1, 1, 0, 1, 0)
        ),
        **mig_family(
            "nvidia.com/mig-2g.35gb", f"{h200}-MIG-2g.35gb", 1, (33280, 32, 2, 2, 2, 2, 0, 2, 0)
        ),
        **mig_family(
            "nvidia.com/mig-3g.71gb", f"{h200}-MIG-3g.71gb", 1, (71424, 60, 3, 3, 3, 3, 0, 3, 0)
        ),
    }
    assert labels["nvidia.com/gpu.count"] == "1"


def test_mixed_all_balanced_on_a30x4_counts_the_four_slice_layout(label_sim: LabelSim) -> None:
    labels = label_sim("a30x4", strategy="mixed", layout="all-balanced").labels

    assert labels["nvidia.com/mig-1g.6gb.count"] == "8"
    assert labels["nvidia.com/mig-2g.12gb.count"] == "4"
    assert labels["nvidia.com/mig-1g.6gb.product"] == "NVIDIA-A30-MIG-1g.6gb"
    assert labels["nvidia.com/mig-2g.12gb.multiprocessors"] == "28"


def test_single_all_1g_10gb_on_hgx_h100_labels_56_mig_devices(label_sim: LabelSim) -> None:
    labels = label_sim("hgx-h100", strategy="single", layout='{"1g.10gb": 7}').labels

    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
    assert labels["nvidia.com/gpu.count"] == "56"
    assert labels["nvidia.com/gpu.memory"] == "9984"
    assert labels["nvidia.com/gpu.multiprocessors"] == "16"
    assert labels["nvidia.com/gpu.engines.jpeg"] == "1"
