"""The label rules one at a time, on hand-made node views: sanitising, versions, GPU mode,
vGPU, timestamps, resource renaming, and the deterministic rule for several GPU models."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.discovery.labels import LabelInputs, build_labels, mode_labels, version_labels
from gpu_operator.discovery.observe import observe
from gpu_operator.discovery.resource_labels import sanitise
from gpu_operator.discovery.view import GpuView, NodeView, VgpuInfo
from gpu_operator.errors import GpuError
from gpu_operator.gpu import Nvml


def gpu(index: int, name: str = "Tesla T4", memory: int = 15360, **kw: object) -> GpuView:
    fields: dict[str, object] = {
        "compute_capability": (7, 5),
        "family": "turing",
        "mig_capable": False,
        "mig_enabled": False,
        "pci_class": 0x0302,
    }
    fields.update(kw)
    return GpuView(index=index, name=name, memory_mib=memory, **fields)  # type: ignore[arg-type]


def node(*gpus: GpuView, **kw: object) -> NodeView:
    return NodeView("550.107.02", 12050, tuple(gpus), **kw)  # type: ignore[arg-type]


L4 = {"name": "NVIDIA L4", "memory": 23034, "compute_capability": (8, 9), "family": "ada-lovelace"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB", id="spaces become dashes"),
        pytest.param("Tesla  T4\t", "Tesla-T4", id="whitespace runs collapse, ends trimmed"),
        pytest.param("GeForce RTX 4090 (Rev. 2)", "GeForce-RTX-4090-Rev.-2", id="() dropped"),
        pytest.param("A100+me/x", "A100mex", id="+ and / dropped"),
    ],
)
def test_sanitise_keeps_only_label_safe_characters(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


def test_a_two_part_driver_version_has_an_empty_revision() -> None:
    labels = version_labels("550.54", 12040)

    assert labels["nvidia.com/cuda.driver.rev"] == ""
    assert labels["nvidia.com/cuda.driver-version.revision"] == ""
    assert labels["nvidia.com/cuda.driver-version.full"] == "550.54"
    assert labels["nvidia.com/cuda.runtime-version.full"] == "12.4"


def test_a_driver_version_of_another_shape_is_an_error_naming_it() -> None:
    with pytest.raises(GpuError, match=re.escape('"1.2.3.4" does not match the format "X.Y[.Z]"')):
        version_labels("1.2.3.4", 12040)


@pytest.mark.parametrize(
    ("classes", "mode"),
    [
        pytest.param((0x0302, 0x0302), "compute", id="all 3D controllers: compute"),
        pytest.param((0x0300,), "graphics", id="all VGA: graphics"),
        pytest.param((0x0302, 0x0300), "unknown", id="mixed classes: unknown"),
        pytest.param((0x0302, None), "unknown", id="an unreadable class: unknown"),
    ],
)
def test_gpu_mode_follows_the_pci_class_of_every_gpu(
    classes: tuple[int | None, ...], mode: str
) -> None:
    gpus = tuple(gpu(i, pci_class=c) for i, c in enumerate(classes))

    assert mode_labels(gpus) == {"nvidia.com/gpu.mode": mode}


def test_a_vgpu_guest_labels_the_host_driver() -> None:
    labels = build_labels(node(gpu(0), vgpu=VgpuInfo("550.54.16", "r550_40")), LabelInputs()).labels

    assert labels["nvidia.com/vgpu.present"] == "true"
    assert labels["nvidia.com/vgpu.host-driver-version"] == "550.54.16"
    assert labels["nvidia.com/vgpu.host-driver-branch"] == "r550_40"


def test_the_timestamp_is_the_run_time_in_unix_seconds_and_omitted_without_one() -> None:
    with_time = build_labels(node(gpu(0)), LabelInputs(timestamp=1724632719)).labels
    without = build_labels(node(gpu(0)), LabelInputs(timestamp=None)).labels

    assert with_time["nvidia.com/gfd.timestamp"] == "1724632719"
    assert "nvidia.com/gfd.timestamp" not in without
    assert set(with_time) - set(without) == {"nvidia.com/gfd.timestamp"}


def test_a_node_without_gpus_gets_only_the_timestamp_and_a_warning() -> None:
    result = build_labels(node(), LabelInputs(timestamp=5))

    assert result.labels == {"nvidia.com/gfd.timestamp": "5"}
    assert result.warnings == ("No labels generated from any source",)


def test_a_resources_section_is_ignored_as_upstream_so_a_rule_for_its_name_shares_nothing() -> None:
    config = load_config(
        "resources:\n  gpus:\n  - pattern: '*T4*'\n    name: t4\n"
        "sharing:\n  timeSlicing:\n    resources:\n    - name: t4\n      replicas: 5\n",
        source="c.yaml",
    )
    inputs = LabelInputs(sharing=config.sharing, resources=config.resources)

    labels = build_labels(node(gpu(0)), inputs).labels

    assert config.ignored[0].startswith("c.yaml:1: resources: customizing resource names")
    assert labels["nvidia.com/gpu.replicas"] == "1"
    assert labels["nvidia.com/gpu.product"] == "Tesla-T4"
    assert not any(k.startswith("nvidia.com/t4") for k in labels)


def test_a_sharing_rule_for_a_resource_the_node_lacks_leaves_one_replica() -> None:
    config = load_config(
        "sharing:\n  timeSlicing:\n    resources:\n    - name: mig-1g.5gb\n      replicas: 4\n",
        source="c.yaml",
    )
    labels = build_labels(node(gpu(0)), LabelInputs(sharing=config.sharing)).labels

    assert labels["nvidia.com/gpu.replicas"] == "1"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "none"
    assert labels["nvidia.com/gpu.product"] == "Tesla-T4"


# --- several GPU models -----------------------------------------------------------------------


def test_with_several_models_gpu_labels_describe_the_model_with_most_gpus() -> None:
    result = build_labels(node(gpu(0, **L4), gpu(1), gpu(2)), LabelInputs())  # type: ignore[arg-type]

    labels = result.labels
    assert labels["nvidia.com/gpu.product"] == "Tesla-T4"
    assert labels["nvidia.com/gpu.count"] == "2"
    assert labels["nvidia.com/gpu.memory"] == "15360"
    assert labels["nvidia.com/gpu.family"] == "turing"
    own = {k: v for k, v in labels.items() if k.startswith("nvidia.com/gpu-operator.")}
    assert own == {
        "nvidia.com/gpu-operator.models": "2",
        "nvidia.com/gpu-operator.model.0.product": "Tesla-T4",
        "nvidia.com/gpu-operator.model.0.count": "2",
        "nvidia.com/gpu-operator.model.0.memory": "15360",
        "nvidia.com/gpu-operator.model.1.product": "NVIDIA-L4",
        "nvidia.com/gpu-operator.model.1.count": "1",
        "nvidia.com/gpu-operator.model.1.memory": "23034",
    }
    assert result.warnings[0].startswith(
        "Multiple device types detected: Tesla T4 x2, NVIDIA L4 x1"
    )


def test_with_a_tie_the_model_whose_name_sorts_first_wins_whatever_the_gpu_order() -> None:
    forward = build_labels(node(gpu(0), gpu(1, **L4)), LabelInputs()).labels  # type: ignore[arg-type]
    backward = build_labels(node(gpu(0, **L4), gpu(1)), LabelInputs()).labels  # type: ignore[arg-type]

    assert forward == backward
    assert forward["nvidia.com/gpu.product"] == "NVIDIA-L4"
    assert forward["nvidia.com/gpu-operator.model.1.product"] == "Tesla-T4"


def test_a_homogeneous_node_gets_none_of_our_own_model_labels() -> None:
    labels = build_labels(node(gpu(0), gpu(1)), LabelInputs()).labels

    assert not any(k.startswith("nvidia.com/gpu-operator.") for k in labels)


def test_a_simulated_mixed_node_labels_identically_across_runs_and_orders(
    open_sim: Callable[..., Nvml],
) -> None:
    runs = [
        build_labels(observe(open_sim(spec)), LabelInputs()).labels
        for spec in ("l4,t4x2", "t4x2,l4", "t4,l4,t4", "l4,t4x2")
    ]

    assert all(r == runs[0] for r in runs)
    assert runs[0]["nvidia.com/gpu.product"] == "Tesla-T4"
    assert runs[0]["nvidia.com/gpu.count"] == "2"
    assert runs[0]["nvidia.com/gpu-operator.model.1.product"] == "NVIDIA-L4"


def test_gpu_mode_follows_the_pci_class_nvml_reports(open_sim: Callable[..., Nvml]) -> None:
    labels = build_labels(observe(open_sim("a30x4")), LabelInputs()).labels
    assert labels["nvidia.com/gpu.mode"] == "compute"  # every catalogue model is a 3D controller
