"""Sharing applied by prepare and undone by unprepare, on a simulated H100 node read back through
the NVML facade: time-slicing sets the claim's GPUs' time-slice (and only theirs), MPS sets
EXCLUSIVE_PROCESS, starts a daemon per claim and gives the claim's CDI devices the MPS pipe,
shm and client variables; a wrong config prepares nothing; a failing daemon leaves the GPUs as
they were; the real-GPU path runs ``nvidia-cuda-mps-control`` with upstream's commands."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml

from gpu_operator.dra.cdi import claim_spec
from gpu_operator.dra.checkpoint import load
from gpu_operator.dra.claims import ClaimRef
from gpu_operator.dra.devices import NodeGpus
from gpu_operator.dra.prepare import Preparer
from gpu_operator.dra.sharing import (
    MpsControl,
    ProcessMpsControl,
    SharingManager,
    SimulatedMpsControl,
)
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu import compute_policy as policy
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.toolkit.cdi_generate import CdiOptions
from gpu_operator.toolkit.driver_tree import discover
from helpers.dra_driver import Claims, claim, make_driver_root

SCHEMA = json.loads((Path(__file__).parents[2] / "data" / "cdi-schema.json").read_text())
NODE = "gpu-node-1"
UID = "8e3c-4f00-aa11"
REF = ClaimRef("ml", "train", UID)

World = tuple[Callable[..., Preparer], Claims, HardwareSettings, Path]


@pytest.fixture
def world(tmp_path: Path, node_gpus: Callable[[str], NodeGpus]) -> World:
    node = node_gpus("hgx-h100")
    hardware = HardwareSettings(sim="hgx-h100", sim_root=tmp_path / "sim")
    version = node.system.driver_version
    tree = discover(make_driver_root(tmp_path / "driver", version), version)
    options = CdiOptions(hook_path="/usr/bin/nvidia-cdi-hook")
    claims = Claims()
    plugin_dir = tmp_path / "plugins/gpu.nvidia.com"

    def spec(uid: str, gpus: Sequence[GpuInfo]) -> dict[str, Any]:
        return claim_spec(uid, gpus, tree, options)

    def make(mps: MpsControl | None = None) -> Preparer:
        sharing = SharingManager(
            hardware, plugin_dir, node.by_name(), mps=mps or SimulatedMpsControl()
        )
        return Preparer(
            NODE,
            node.by_name(),
            cdi_root=tmp_path / "cdi",
            checkpoint_path=plugin_dir / "checkpoint.json",
            claims=claims,
            spec=spec,
            sharing=sharing,
        )

    return make, claims, hardware, plugin_dir


def configured(
    devices: Sequence[str], sharing: dict[str, Any], *, uid: str = UID, name: str = "train"
) -> dict[str, Any]:
    body = claim([("gpus", "gpu.nvidia.com", NODE, d) for d in devices], uid=uid, name=name)
    body["status"]["allocation"]["devices"]["config"] = [
        {
            "source": "FromClaim",
            "opaque": {
                "driver": "gpu.nvidia.com",
                "parameters": {
                    "apiVersion": "resource.nvidia.com/v1beta1",
                    "kind": "GpuConfig",
                    "sharing": sharing,
                },
            },
        }
    ]
    return body


def settings(hardware: HardwareSettings) -> list[tuple[str, int | None]]:
    with Nvml.open(hardware) as nvml:
        return [
            (policy.compute_mode(nvml, i), policy.timeslice(nvml, i))
            for i in range(nvml.device_count())
        ]


DEFAULTS = [("DEFAULT", 0)] * 8


def test_time_slicing_sets_the_claims_gpus_and_unprepare_puts_the_default_back(
    world: World,
) -> None:
    make, claims, hardware, _ = world
    claims.add(
        configured(
            ["gpu-2", "gpu-5"],
            {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}},
        )
    )
    preparer = make()
    devices, error = preparer.prepare(REF)
    assert error == ""
    assert [d.device for d in devices] == ["gpu-2", "gpu-5"]
    expected = list(DEFAULTS)
    expected[2] = expected[5] = ("DEFAULT", 3)
    assert settings(hardware) == expected
    assert preparer.prepare(REF) == (devices, "")  # once per claim: nothing new

    restarted = make()  # a restart still knows what to undo
    assert restarted.unprepare(REF) == ""
    assert settings(hardware) == DEFAULTS


def test_mps_starts_a_daemon_per_claim_and_its_devices_get_the_pipe(
    world: World, tmp_path: Path
) -> None:
    make, claims, hardware, plugin_dir = world
    claims.add(
        configured(
            ["gpu-1", "gpu-4"],
            {
                "strategy": "MPS",
                "mpsConfig": {
                    "defaultActiveThreadPercentage": 25,
                    "defaultPinnedDeviceMemoryLimit": "10Gi",
                    "defaultPerDevicePinnedMemoryLimit": {"1": "4Gi"},
                },
            },
        )
    )
    preparer = make()
    _, error = preparer.prepare(REF)
    assert error == ""
    modes = [mode for mode, _ in settings(hardware)]
    assert [i for i, m in enumerate(modes) if m == "EXCLUSIVE_PROCESS"] == [1, 4]
    (daemon,) = (plugin_dir / "mps").iterdir()
    assert daemon.name.startswith(f"{UID}-")
    assert stat.S_ISFIFO((daemon / "pipe/control").stat().st_mode)
    assert (daemon / "shm").is_dir()
    log = (daemon / "log/control.log").read_text()
    assert "set_default_active_thread_percentage 25" in log

    spec = yaml.safe_load((tmp_path / f"cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml").read_text())
    jsonschema.validate(spec, SCHEMA)
    for device in spec["devices"]:
        edits = device["containerEdits"]
        assert {
            "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps",
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25",
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=10240M,1=4096M",
        } <= set(edits["env"])
        assert {(m["hostPath"], m["containerPath"]) for m in edits["mounts"]} == {
            (str(daemon / "shm"), "/dev/shm"),
            (str(daemon / "pipe"), "/tmp/nvidia-mps"),
        }

    spec_path = tmp_path / f"cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml"
    spec_path.unlink()  # removed behind the driver's back: written again with the same edits
    assert make().prepare(REF)[1] == ""
    assert yaml.safe_load(spec_path.read_text()) == spec

    assert preparer.unprepare(REF) == ""
    assert not daemon.exists()
    assert settings(hardware) == DEFAULTS


@pytest.mark.parametrize(
    ("sharing", "says"),
    [
        (
            {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Forever"}},
            "sharing.timeSlicingConfig.interval: unknown time-slice interval: Forever",
        ),
        ({"strategy": "Spatial"}, "sharing.strategy: unknown GPU sharing strategy: Spatial"),
        (
            {"strategy": "MPS", "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"7": "1Gi"}}},
            "sharing.mpsConfig.defaultPerDevicePinnedMemoryLimit[7]: invalid device",
        ),
    ],
)
def test_a_wrong_config_is_the_claims_error_and_nothing_is_prepared(
    world: World, tmp_path: Path, sharing: dict[str, Any], says: str
) -> None:
    make, claims, hardware, plugin_dir = world
    claims.add(configured(["gpu-0"], sharing))
    devices, error = make().prepare(REF)
    assert devices == ()
    assert error.startswith(
        "ResourceClaim ml/train: status.allocation.devices.config[0] (FromClaim): "
    )
    assert says in error
    assert "\n" not in error
    assert not (tmp_path / "cdi").exists() or not any((tmp_path / "cdi").iterdir())
    assert load(plugin_dir / "checkpoint.json") == {}
    assert settings(hardware) == DEFAULTS
    assert not (plugin_dir / "mps").exists()


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_a_daemon_that_fails_to_start_leaves_the_gpus_as_they_were(
    world: World, tmp_path: Path
) -> None:
    make, claims, hardware, plugin_dir = world
    control = script(tmp_path / "nvidia-cuda-mps-control", "echo 'no GPU for MPS' >&2; exit 1\n")
    claims.add(configured(["gpu-3"], {"strategy": "MPS"}))
    devices, error = make(ProcessMpsControl(control, {})).prepare(REF)
    assert devices == ()
    assert error.startswith("ResourceClaim ml/train: MPS control daemon ")
    assert error.endswith("-d: exit 1: no GPU for MPS")
    assert settings(hardware) == DEFAULTS
    assert load(plugin_dir / "checkpoint.json") == {}


def test_the_real_gpu_path_runs_mps_control_with_upstreams_commands(
    world: World, tmp_path: Path
) -> None:
    """``ProcessMpsControl`` runs the driver's binary: ``-d`` with the claim's GPUs and
    directories, the config's defaults piped in as upstream's daemon pod pipes them, ``quit``
    on unprepare (a recording script stands in for the binary: the simulated node has no MPS)."""
    make, claims, hardware, _ = world
    calls = tmp_path / "calls.log"
    control = script(
        tmp_path / "nvidia-cuda-mps-control",
        f'echo "args=$* visible=$CUDA_VISIBLE_DEVICES pipe=$CUDA_MPS_PIPE_DIRECTORY '
        f'stdin=$(cat)" >> {calls}\n',
    )
    claims.add(
        configured(
            ["gpu-6"],
            {
                "strategy": "MPS",
                "mpsConfig": {
                    "defaultActiveThreadPercentage": 50,
                    "defaultPinnedDeviceMemoryLimit": "2Gi",
                },
            },
        )
    )
    preparer = make(ProcessMpsControl(control, {}))
    assert preparer.prepare(REF)[1] == ""
    with Nvml.open(hardware) as nvml:
        uuid = nvml.gpu(6).uuid
    lines = calls.read_text().splitlines()
    assert [line.split(" stdin=")[1] for line in lines] == [
        "",
        "set_default_active_thread_percentage 50",
        f"set_default_device_pinned_mem_limit {uuid} 2048M",
    ]
    assert lines[0].startswith(f"args=-d visible={uuid} pipe=")
    assert lines[0].split("pipe=")[1].split(" ")[0].endswith("/pipe")
    assert preparer.unprepare(REF) == ""
    assert calls.read_text().splitlines()[-1].endswith("stdin=quit")


def test_a_gpu_another_prepared_claim_holds_keeps_its_setting(world: World) -> None:
    """Two claims on one GPU (admin access): the first unprepared leaves the time-slice."""
    make, claims, hardware, _ = world
    long = {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}
    claims.add(configured(["gpu-0"], long))
    claims.add(configured(["gpu-0"], long, uid="second-uid", name="admin"))
    preparer = make()
    second = ClaimRef("ml", "admin", "second-uid")
    assert preparer.prepare(REF)[1] == ""
    assert preparer.prepare(second)[1] == ""
    assert preparer.unprepare(REF) == ""
    assert settings(hardware)[0] == ("DEFAULT", 3)
    assert preparer.unprepare(second) == ""
    assert settings(hardware)[0] == ("DEFAULT", 0)


def test_a_claim_without_a_config_changes_nothing(world: World) -> None:
    make, claims, hardware, plugin_dir = world
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-7")]))
    preparer = make()
    assert preparer.prepare(REF)[1] == ""
    assert settings(hardware) == DEFAULTS
    assert not (plugin_dir / "sharing.json").exists()
    assert preparer.unprepare(REF) == ""


def test_a_restart_starts_again_the_daemons_that_no_longer_run(
    world: World, tmp_path: Path, node_gpus: Callable[[str], NodeGpus]
) -> None:
    """The daemon ran in the plugin's container: after a restart, a claim's daemon that does
    not answer ``get_server_list`` is started again with the same directories and defaults."""
    make, claims, hardware, plugin_dir = world
    calls = tmp_path / "calls.log"
    control = script(
        tmp_path / "nvidia-cuda-mps-control",
        "input=$(cat)\n"
        f'echo "args=$* stdin=$input" >> {calls}\n'
        '[ "$input" = get_server_list ] && exit 1\n'
        "exit 0\n",
    )
    mps = {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 40}}
    claims.add(configured(["gpu-2"], mps))
    assert make(ProcessMpsControl(control, {})).prepare(REF)[1] == ""
    calls.write_text("")

    restarted = SharingManager(
        hardware, plugin_dir, node_gpus("hgx-h100").by_name(), mps=ProcessMpsControl(control, {})
    )
    restarted.resume()
    assert [line.split(" stdin=") for line in calls.read_text().splitlines()] == [
        ["args=", "get_server_list"],
        ["args=-d", ""],
        ["args=", "set_default_active_thread_percentage 40"],
    ]

    simulated = SimulatedMpsControl()
    (daemon,) = (plugin_dir / "mps").iterdir()
    (daemon / "pipe/control").unlink(missing_ok=True)
    SharingManager(hardware, plugin_dir, node_gpus("hgx-h100").by_name(), mps=simulated).resume()
    assert stat.S_ISFIFO((daemon / "pipe/control").stat().st_mode)
