"""A sandbox workload container holds its allocated devices as simulated CUDA processes: NVML
lists them on the right GPU and MIG device while it runs, and they are gone after it stops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.spec_v1 import load_spec
from gpu_operator.sandbox.workloads import hold_devices, release

OpenSim = Callable[..., Nvml]


def sim_env(tmp_path: Path, spec: str) -> dict[str, str]:
    path = HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path()
    return {"GPU_OPERATOR_SIM": str(path)}


def test_a_mig_device_and_a_time_sliced_gpu_replica_each_get_a_process_until_release(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("dgx-a100")
    gpu0_balanced = load_spec(
        "version: v1\nmig-configs:\n  c:\n    - devices: [0]\n      mig-enabled: true\n"
        '      mig-devices: {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}\n',
        "test.yaml",
    ).select("c")
    apply_config(nvml, gpu0_balanced)
    mig = nvml.mig_devices(0)[-1]
    whole = nvml.gpu(7)
    env = sim_env(tmp_path, "dgx-a100")
    held = hold_devices(env, [mig.uuid, f"{whole.uuid}::2", f"{whole.uuid}::3"])
    assert [gpu for gpu, _ in held] == [0, 7], "two replicas of one GPU are one process"
    [on_mig] = nvml.processes(0)
    assert (on_mig.gpu_instance_id, on_mig.compute_instance_id) == (
        mig.gpu_instance_id,
        mig.compute_instance_id,
    )
    assert [p.gpu_instance_id for p in nvml.processes(7)] == [None]
    release(env, held)
    assert nvml.processes(0) == []
    assert nvml.processes(7) == []
    assert held == []


def test_a_device_the_node_lacks_is_named_and_nothing_is_held(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("dgx-a100")
    env = sim_env(tmp_path, "dgx-a100")
    with pytest.raises(ConfigError, match="MIG-gone"):
        hold_devices(env, [nvml.gpu(0).uuid, "MIG-gone"])
    assert all(nvml.processes(i) == [] for i in range(nvml.device_count()))
