"""On a simulated dgx-a100 the four gating validations write the upstream files in order:
driver (NVML through the facade), toolkit (config mode: the runtime config the toolkit wrote and
its CDI spec), cuda (the validation pod on this node, awaited through the API emulator) and
plugin (node capacity); each failure names what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from lightkube import Client

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.kube import KubeSettings
from gpu_operator.toolkit.cdi_generate import generate
from gpu_operator.toolkit.driver_tree import discover
from gpu_operator.toolkit.install import install
from gpu_operator.toolkit.settings import ToolkitSettings
from gpu_operator.validator.components import check_for
from gpu_operator.validator.running import ValidationFailed, run_component
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.status import COMPONENT_FILES
from gpu_operator.validator.toolkit_check import check_config
from gpu_operator.validator.workloads import PodSettings
from helpers.validator_cluster import add_node, mark_pods

CONFIGS = Path(__file__).parents[2] / "data" / "runtime-configs"


@pytest.fixture
def toolkit(tmp_path: Path) -> ToolkitSettings:
    """containerd configured by `toolkit install` (CDI on), with its spec in a CDI dir."""
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    shutil.copy(CONFIGS / "containerd-1.7-default.toml", config)
    root = tmp_path / "usr-local-nvidia"
    (root / "toolkit").mkdir(parents=True)
    (root / "toolkit" / "nvidia-container-runtime").write_text("#!/bin/sh\n")
    settings = ToolkitSettings(
        runtime="containerd",
        root=root,
        config=config,
        restart_mode="none",
        cdi_enabled=True,
        runtime_version="1.7.22",
        cdi_output_dir=tmp_path / "var-run-cdi",
    )
    install(settings)
    return settings


def write_cdi(hardware: HardwareSettings, directory: Path) -> None:
    with Nvml.open(hardware) as nvml:
        spec = generate(nvml.gpus(), {}, discover(directory, nvml.system().driver_version))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "nvidia.yaml").write_text(yaml.safe_dump(spec))


def test_on_a_simulated_dgx_a100_the_four_validations_write_the_upstream_files_in_order(
    tmp_path: Path,
    client: Client,
    kube: KubeSettings,
    toolkit: ToolkitSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hardware = HardwareSettings(sim="dgx-a100", sim_root=tmp_path / "sim")
    write_cdi(hardware, toolkit.cdi_output_dir)
    add_node(client, "gpu-node-1", {"nvidia.com/gpu": "8"})
    out = tmp_path / "validations"
    pod = PodSettings(node="gpu-node-1", namespace="gpu-operator")

    def kubelet(_seconds: float) -> None:  # the kubelet runs the pod while we sleep
        mark_pods(client, "nvidia-cuda-validator", "Succeeded")

    logged: list[str] = []
    written: list[list[str]] = []

    for component in ("driver", "toolkit", "cuda", "plugin"):
        settings = ValidatorSettings(
            component=component,
            output_dir=out,
            node_name="gpu-node-1",
            with_workload=component == "cuda",  # upstream's defaults: cuda true, plugin false
        )
        check = check_for(settings, hardware, kube, pod, toolkit, log=logged.append, sleep=kubelet)
        run_component(out / COMPONENT_FILES[component], check)
        written.append(sorted(p.name for p in out.iterdir()))

    assert written == [
        ["driver-ready"],
        ["driver-ready", "toolkit-ready"],
        ["cuda-ready", "driver-ready", "toolkit-ready"],
        ["cuda-ready", "driver-ready", "plugin-ready", "toolkit-ready"],
    ]
    assert (out / "driver-ready").read_text().startswith("IS_HOST_DRIVER=true\n")
    assert (out / "toolkit-ready").read_text() == ""
    assert logged[0].startswith("config mode: runtime nvidia -> ")
    assert logged[1].startswith("nvidia-cuda-validator pod nvidia-cuda-validator-")
    assert logged[2] == "node gpu-node-1 advertises nvidia.com/gpu"


def test_the_toolkit_check_says_which_runtime_is_missing_from_which_file(
    tmp_path: Path, toolkit: ToolkitSettings
) -> None:
    other = ToolkitSettings(
        runtime="containerd", root=toolkit.root, config=toolkit.config, runtime_name="nvidia-gpu"
    )
    with pytest.raises(ValidationFailed) as failure:
        check_config(other, (tmp_path,))
    assert f"look up runtime 'nvidia-gpu' in {toolkit.config}" in str(failure.value)
    assert "found: nvidia, nvidia-cdi, nvidia-legacy, runc" in str(failure.value)


def test_the_toolkit_check_wants_a_cdi_spec_when_cdi_is_on(
    tmp_path: Path, toolkit: ToolkitSettings
) -> None:
    with pytest.raises(ValidationFailed, match=r"find a CDI spec in .*no nvidia.com/gpu spec"):
        check_config(toolkit, (tmp_path / "empty",))
