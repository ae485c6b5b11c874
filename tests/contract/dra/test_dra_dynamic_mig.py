"""Dynamic MIG in the served driver (``FEATURE_GATES=DynamicMIG=true``) on a simulated HGX H100
with MIG mode on for four of its GPUs: the pool it publishes (counter sets in a slice of their
own, at most 64 devices a slice, one generation), a claim for a MIG device prepared over the
kubelet's socket into exactly that GPU/compute instance and a CDI device with the instance's
``/dev/nvidia-caps`` nodes, a restarted driver destroying it at unprepare, an instance made
behind the driver's back taken off the slice, the gate off leaving MIG GPUs out, and each GPU's
MIG devices published in the solver's order (so a first-fit scheduler packs as it does)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import grpc
import yaml

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos.grpc_api import DRAPluginStub
from helpers.dra_driver import Claims, Slices, claim

StartDriver = Callable[..., DraDriver]
NODE = "gpu-node-1"
UID = "5d1e-77aa-0b3c"
GATE = {"FEATURE_GATES": "DynamicMIG=true"}
MIG_GPUS = range(4)


def _mig_on(hardware: Callable[[str], HardwareSettings]) -> HardwareSettings:
    settings = hardware("hgx-h100")
    with Nvml.open(settings) as nvml:
        for index in MIG_GPUS:
            mode, _ = nvml.set_mig_mode(index, True)
            assert mode.enabled  # Hopper: at once, no reset
    return settings


def _names(pool: list[dict[str, object]]) -> list[str]:
    return [d["name"] for s in pool for d in s["spec"].get("devices") or []]  # type: ignore[index, union-attr, attr-defined]


def _call(endpoint: Path, method: str, request: object) -> object:
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        return getattr(DRAPluginStub(channel), method)(request, timeout=10)


def test_the_pool_keeps_counter_sets_apart_and_at_most_64_devices_a_slice(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    _mig_on(hardware)
    start_driver("hgx-h100", **GATE)
    pool = slices.pool(NODE)
    counters = [s for s in pool if "sharedCounters" in s["spec"]]
    devices = [s for s in pool if "devices" in s["spec"]]
    assert [s["metadata"]["name"] for s in counters] == [f"{NODE}-gpu.nvidia.com-counters"]
    assert not any("devices" in s["spec"] for s in counters)
    assert [c["name"] for c in counters[0]["spec"]["sharedCounters"]] == [
        f"gpu-{i}-counter-set" for i in MIG_GPUS
    ]
    assert {s["spec"]["pool"]["generation"] for s in pool} == {
        pool[0]["spec"]["pool"]["generation"]
    }
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in pool} == {len(pool)}
    assert all(len(s["spec"]["devices"]) <= 64 for s in devices)
    names = _names(pool)
    # 4 MIG GPUs: the whole GPU + 25 MIG devices each; 4 full GPUs without counters.
    assert len(names) == 4 * 26 + 4
    assert "gpu-0-mig-3g40gb-9-4" in names
    assert "gpu-3-mig-7g80gb-0-0" in names
    assert not any(n.startswith("gpu-4-mig") for n in names)
    by_name = {d["name"]: d for s in devices for d in s["spec"]["devices"]}
    assert "consumesCounters" in by_name["gpu-0"]
    assert "consumesCounters" not in by_name["gpu-5"]
    three_g = by_name["gpu-0-mig-3g40gb-9-4"]
    assert three_g["attributes"]["profile"] == {"string": "3g.40gb"}
    assert three_g["attributes"]["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
    (consumed,) = three_g["consumesCounters"]
    assert {k for k in consumed["counters"] if k.startswith("memory-slice-")} == {
        f"memory-slice-{i}" for i in range(4, 8)
    }


def test_without_the_gate_mig_gpus_are_left_out(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    _mig_on(hardware)
    start_driver("hgx-h100")
    (only,) = slices.pool(NODE)
    assert _names([only]) == [f"gpu-{i}" for i in range(4, 8)]
    assert "sharedCounters" not in only["spec"]


def test_a_mig_claim_creates_exactly_its_instance_and_a_restarted_driver_removes_it(
    start_driver: StartDriver,
    sockets_dir: Path,
    slices: Slices,
    claims: Claims,
    tmp_path: Path,
    hardware: Callable[[str], HardwareSettings],
) -> None:
    settings = _mig_on(hardware)
    driver = start_driver("hgx-h100", **GATE)
    before = slices.pool(NODE)
    endpoint = sockets_dir / "plugins/gpu.nvidia.com/dra.sock"
    claims.add(claim([("mig", "gpu.nvidia.com", NODE, "gpu-1-mig-3g40gb-9-4")], uid=UID))
    request = dra.Claim(namespace="ml", name="train", uid=UID)
    response = _call(
        endpoint, "NodePrepareResources", dra.NodePrepareResourcesRequest(claims=[request])
    )
    answer = response.claims[UID]  # type: ignore[attr-defined]
    assert answer.error == ""
    (device,) = answer.devices
    assert device.device_name == "gpu-1-mig-3g40gb-9-4"
    assert list(device.cdi_device_ids) == [f"k8s.gpu.nvidia.com/claim={UID}-gpu-1-mig-3g40gb-9-4"]
    with Nvml.open(settings) as nvml:
        (gi,) = nvml.gpu_instances(1)
        (mig,) = nvml.mig_devices(1)
        assert (gi.profile_name, gi.placement.start, gi.placement.size) == ("3g.40gb", 4, 4)
        assert not any(nvml.gpu_instances(i) for i in (0, 2, 3))
        minor = nvml.gpu(1).minor_number
    spec = yaml.safe_load((tmp_path / f"cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml").read_text())
    (cdi_device,) = spec["devices"]
    assert cdi_device["name"] == f"{UID}-gpu-1-mig-3g40gb-9-4"
    nodes = [n["path"] for n in cdi_device["containerEdits"]["deviceNodes"]]
    assert nodes[0] == f"/dev/nvidia{minor}"
    assert [n.rsplit("/", 1)[0] for n in nodes[1:]] == ["/dev/nvidia-caps"] * 2
    # The same devices (the scheduler accounts for allocated ones), reordered for the instance.
    assert sorted(_names(slices.pool(NODE))) == sorted(_names(before))
    checkpoint = (sockets_dir / "plugins/gpu.nvidia.com/checkpoint.json").read_text()
    assert mig.uuid in checkpoint

    driver.stop(clean=False)
    start_driver("hgx-h100", **GATE)
    assert sorted(_names(slices.pool(NODE))) == sorted(_names(before))  # still ours
    response = _call(
        endpoint, "NodeUnprepareResources", dra.NodeUnprepareResourcesRequest(claims=[request])
    )
    assert response.claims[UID].error == ""  # type: ignore[attr-defined]
    with Nvml.open(settings) as nvml:
        assert nvml.gpu_instances(1) == []
        assert nvml.mig_devices(1) == []
    assert not (tmp_path / f"cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml").exists()


def test_an_instance_made_behind_the_drivers_back_is_taken_off_and_refused(
    start_driver: StartDriver,
    sockets_dir: Path,
    slices: Slices,
    claims: Claims,
    hardware: Callable[[str], HardwareSettings],
) -> None:
    settings = _mig_on(hardware)
    start_driver("hgx-h100", **GATE)
    generation = slices.pool(NODE)[0]["spec"]["pool"]["generation"]
    with Nvml.open(settings) as nvml:
        one_g = next(p for p in nvml.gi_profiles(2) if p.name == "1g.10gb")
        nvml.create_gpu_instance(2, one_g.id, 0)

    def gpu2(pool: list[dict[str, object]]) -> list[str]:
        return [n for n in _names(pool) if n == "gpu-2" or n.startswith("gpu-2-")]

    assert slices.wait_for(lambda s: "gpu-2-mig-7g80gb-0-0" not in gpu2(s.pool(NODE)))
    pool = slices.pool(NODE)
    assert {s["spec"]["pool"]["generation"] for s in pool} == {generation + 1}  # all rewritten
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in pool} == {len(pool)}
    left = gpu2(pool)
    assert "gpu-2" not in left  # the whole GPU can't be had now
    assert "gpu-2-mig-3g40gb-9-4" in left
    assert "gpu-2-mig-4g40gb-5-0" not in left
    (counters,) = [s for s in pool if "sharedCounters" in s["spec"]]
    gpu2_set = next(
        c for c in counters["spec"]["sharedCounters"] if c["name"] == "gpu-2-counter-set"
    )
    assert gpu2_set["counters"]["memory-slice-0"] == {"value": "0"}

    claims.add(claim([("mig", "gpu.nvidia.com", NODE, "gpu-2-mig-4g40gb-5-0")], uid=UID))
    request = dra.Claim(namespace="ml", name="train", uid=UID)
    endpoint = sockets_dir / "plugins/gpu.nvidia.com/dra.sock"
    response = _call(
        endpoint, "NodePrepareResources", dra.NodePrepareResourcesRequest(claims=[request])
    )
    error = response.claims[UID].error  # type: ignore[attr-defined]
    assert error.startswith("ResourceClaim ml/train: gpu-2-mig-4g40gb-5-0: memory slices 0-3")
    assert "did not create" in error
    with Nvml.open(settings) as nvml:
        assert [gi.profile_name for gi in nvml.gpu_instances(2)] == ["1g.10gb"]


def test_first_fit_in_published_order_follows_the_solver(
    start_driver: StartDriver,
    sockets_dir: Path,
    slices: Slices,
    claims: Claims,
    hardware: Callable[[str], HardwareSettings],
) -> None:
    """Kubernetes' scheduler takes the first device that fits in slice order. Each GPU's MIG
    devices are published in the placement preference's order for the instances it has, so a
    first-fit 3g.40gb on an empty GPU takes slice 4 (by name, slice 0 comes first and leaves no
    room for the only 4g.40gb placement), and a 4g.40gb asked next is still served."""
    settings = _mig_on(hardware)
    start_driver("hgx-h100", **GATE)
    endpoint = sockets_dir / "plugins/gpu.nvidia.com/dra.sock"
    taken: list[tuple[int, int]] = []

    def first_fit(profile: str) -> str:
        for device in (d for s in slices.pool(NODE) for d in s["spec"].get("devices") or []):
            attributes = device["attributes"]
            if not device["name"].startswith("gpu-0-mig-") or (
                attributes["profile"]["string"] != profile
            ):
                continue
            start = attributes["gpu-operator.nvidia.com/placementStart"]["int"]
            end = start + attributes["gpu-operator.nvidia.com/placementSize"]["int"]
            if all(end <= a or b <= start for a, b in taken):
                taken.append((start, end))
                return str(device["name"])
        raise AssertionError(f"no {profile} fits")

    got = []
    for i, profile in enumerate(("3g.40gb", "4g.40gb")):
        name = first_fit(profile)
        got.append(name)
        uid = f"uid-{i}"
        claims.add(claim([("mig", "gpu.nvidia.com", NODE, name)], name=f"c{i}", uid=uid))
        writes = len(slices.writes)
        request = dra.NodePrepareResourcesRequest(
            claims=[dra.Claim(namespace="ml", name=f"c{i}", uid=uid)]
        )
        response = _call(endpoint, "NodePrepareResources", request)
        assert response.claims[uid].error == ""  # type: ignore[attr-defined]
        assert slices.wait_for(functools.partial(_more_writes, writes))  # republished
    assert got == ["gpu-0-mig-3g40gb-9-4", "gpu-0-mig-4g40gb-5-0"]
    with Nvml.open(settings) as nvml:
        assert sorted((gi.profile_name, gi.placement.start) for gi in nvml.gpu_instances(0)) == [
            ("3g.40gb", 4),
            ("4g.40gb", 0),
        ]


def _more_writes(than: int, slices: Slices) -> bool:
    return len(slices.writes) > than


def test_a_mig_mode_changed_while_the_driver_runs_is_followed(
    start_driver: StartDriver, slices: Slices, hardware: Callable[[str], HardwareSettings]
) -> None:
    """The MIG manager turns MIG on for GPU 6 and off for GPU 3 (no instances on it): within a
    resync the pool publishes GPU 6's MIG devices and counter set and GPU 3 as a plain GPU."""
    settings = _mig_on(hardware)
    start_driver("hgx-h100", **GATE)
    with Nvml.open(settings) as nvml:
        assert nvml.set_mig_mode(6, True)[0].enabled
        assert not nvml.set_mig_mode(3, False)[0].enabled

    def counter_sets(pool: list[dict[str, object]]) -> list[str]:
        return [
            c["name"]  # type: ignore[index]
            for s in pool
            for c in s["spec"].get("sharedCounters") or []  # type: ignore[index, union-attr, attr-defined]
        ]

    expected = ["gpu-0-counter-set", "gpu-1-counter-set", "gpu-2-counter-set", "gpu-6-counter-set"]
    assert slices.wait_for(lambda s: counter_sets(s.pool(NODE)) == expected)
    names = _names(slices.pool(NODE))
    assert "gpu-6-mig-7g80gb-0-0" in names
    assert not any(n.startswith("gpu-3-mig") for n in names)
    assert "gpu-3" in names
