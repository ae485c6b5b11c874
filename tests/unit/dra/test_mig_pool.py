"""Dynamic MIG as the driver publishes it and a scheduler reads it back: the pool's slices
(``slices.build_pool``: counter sets apart, at most 64 devices a slice, whole GPUs kept
together, parent taints on MIG devices), the GPUs read back from them (``dra.mig_published``)
giving the same placements and the same preference as the GPUs themselves, the
``FEATURE_GATES`` setting, and the checkpoint keeping a created MIG device."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.dra import checkpoint
from gpu_operator.dra.checkpoint import PreparedClaim, PreparedDevice
from gpu_operator.dra.mig_devices import MigGpu, placements, slice_content
from gpu_operator.dra.mig_placement import MigPreference
from gpu_operator.dra.mig_published import mig_gpus
from gpu_operator.dra.settings import resolve_settings
from gpu_operator.dra.slices import GpuGroup, Taint, build_pool
from gpu_operator.errors import ConfigError
from gpu_operator.mig.placement import Placed, addable_starts
from helpers.mig_tables import by_name, profiles_of

H100 = "H100-SXM5-80GB"
NODE = "n1"


def h100(minor: int, foreign: tuple[Placed, ...] = ()) -> MigGpu:
    attributes = {"productName": {"string": "NVIDIA H100 80GB HBM3"}}
    return MigGpu(minor, f"GPU-{minor}", profiles_of(H100), attributes=attributes, foreign=foreign)


def group(gpu: MigGpu) -> GpuGroup:
    whole = {"name": f"gpu-{gpu.minor}", "attributes": {"type": {"string": "gpu"}}}
    content = slice_content(gpu, full_gpu=whole)
    return GpuGroup(f"gpu-{gpu.minor}", tuple(content["devices"]), tuple(content["sharedCounters"]))


def test_eight_mig_gpus_make_one_counter_slice_and_four_device_slices() -> None:
    groups = [group(h100(i)) for i in range(8)]
    taints = {"gpu-3": [Taint("gpu.nvidia.com/xid", "79")]}
    pool = build_pool(NODE, groups, taints, 7)
    assert [s["metadata"]["name"] for s in pool] == [
        "n1-gpu.nvidia.com-counters",
        "n1-gpu.nvidia.com",
        "n1-gpu.nvidia.com-1",
        "n1-gpu.nvidia.com-2",
        "n1-gpu.nvidia.com-3",
    ]
    for body in pool:
        assert body["spec"]["pool"] == {"name": NODE, "generation": 7, "resourceSliceCount": 5}
        assert ("sharedCounters" in body["spec"]) != ("devices" in body["spec"])
    assert len(pool[0]["spec"]["sharedCounters"]) == 8
    device_slices = [[d["name"] for d in s["spec"]["devices"]] for s in pool[1:]]
    assert [len(names) for names in device_slices] == [52] * 4  # two GPUs of 26 each
    assert {n.split("-")[1] for n in device_slices[1]} == {"2", "3"}
    tainted = {d["name"] for s in pool[1:] for d in s["spec"]["devices"] if d.get("taints")}
    assert tainted == {n for n in device_slices[1] if n.split("-")[1] == "3"}
    assert not any("taints" in d for d in groups[3].devices)  # the groups are not changed


def test_without_counter_sets_the_pool_is_the_one_slice_it_always_was() -> None:
    groups = [GpuGroup(f"gpu-{i}", ({"name": f"gpu-{i}"},)) for i in range(3)]
    (only,) = build_pool(NODE, groups, {}, 2)
    assert only["metadata"]["name"] == "n1-gpu.nvidia.com"
    assert only["spec"]["pool"]["resourceSliceCount"] == 1
    assert "sharedCounters" not in only["spec"]


def test_more_than_eight_counter_sets_take_more_counter_slices() -> None:
    pool = build_pool(NODE, [group(h100(i)) for i in range(9)], {}, 1)
    counters = [s for s in pool if "sharedCounters" in s["spec"]]
    assert [len(s["spec"]["sharedCounters"]) for s in counters] == [8, 1]
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in pool} == {len(pool)}


def _read_back(gpus: list[MigGpu]) -> list[MigGpu]:
    pool = build_pool(NODE, [group(g) for g in gpus], {}, 3)
    stale = build_pool(NODE, [group(h100(9))], {}, 2)  # an older generation: ignored
    return mig_gpus([*stale, *pool])[NODE]


def test_the_profiles_read_back_from_the_slices_are_the_gpus() -> None:
    (back,) = _read_back([h100(0)])
    real = {p.id: p for p in profiles_of(H100)}
    assert back.minor == 0
    assert back.uuid == "GPU-0"
    assert not back.foreign
    assert sorted(p.id for p in back.profiles) == sorted(real)
    for p in back.profiles:
        want = real[p.id]
        assert (p.name, p.slice_count, p.instance_count, p.memory_mib) == (
            want.name,
            want.slice_count,
            want.instance_count,
            want.memory_mib,
        )
        assert (p.copy_engines, p.decoders, p.jpegs, p.ofas) == (
            want.copy_engines,
            want.decoders,
            want.jpegs,
            want.ofas,
        )
        assert {pl.start for pl in p.placements} == {pl.start for pl in want.placements}


@pytest.mark.parametrize(
    "layout",
    [
        (("1g.10gb", 0),),
        (("1g.10gb", 0), ("1g.10gb", 1), ("2g.20gb", 2)),
        (("3g.40gb", 4),),
        (("1g.10gb+me", 6),),
        (("4g.40gb", 0), ("1g.20gb", 6)),
    ],
)
def test_with_foreign_instances_the_read_back_gpu_admits_and_ranks_as_the_gpu(
    layout: tuple[tuple[str, int], ...],
) -> None:
    """Foreign instances are published only as what they took off the counter set; read back,
    every profile is addable exactly where it is on the real GPU, and the preference puts the
    same candidate first."""
    foreign = tuple(
        Placed(p, s)
        for (n, s), p in zip(layout, by_name(H100, *(n for n, _ in layout)), strict=True)
    )
    real = h100(0, foreign)
    (back,) = _read_back([real])
    by_id = {p.id: p for p in back.profiles}
    for profile in real.profiles:
        want = addable_starts(real.profiles, real.foreign, profile)
        got = (
            addable_starts(back.profiles, back.foreign, by_id[profile.id])
            if profile.id in by_id
            else []
        )
        assert got == want, profile.name
    for name in ("1g.10gb", "2g.20gb", "3g.40gb", "1g.20gb"):
        candidates = [
            f"gpu-0-mig-{name.replace('.', '')}-{p.profile.id}-{p.start}"
            for p in placements(real)
            if p.profile.name == name and not any(p.mask & f.mask for f in real.foreign)
        ]
        if candidates:
            assert (
                MigPreference([back]).prefer(candidates)[0]
                == MigPreference([real]).prefer(candidates)[0]
            )


def test_feature_gates_are_read_as_kubernetes_writes_them() -> None:
    env = {"NODE_NAME": "n"}
    assert not resolve_settings({}, env).dynamic_mig
    on = resolve_settings({}, {**env, "FEATURE_GATES": "MPSSupport=false, DynamicMIG=true"})
    assert on.dynamic_mig
    assert not resolve_settings(
        {"feature_gates": "DynamicMIG=false"}, {**env, "FEATURE_GATES": "DynamicMIG=true"}
    ).dynamic_mig
    with pytest.raises(ConfigError) as bad:
        resolve_settings({}, {**env, "FEATURE_GATES": "DynamicMig=true"})
    assert "FEATURE_GATES" in str(bad.value)
    assert "unrecognized feature gate: DynamicMig" in str(bad.value)
    with pytest.raises(ConfigError, match="'DynamicMIG' is not Name=true or Name=false"):
        resolve_settings({"feature_gates": "DynamicMIG"}, env)


def test_the_checkpoint_keeps_a_created_mig_device(tmp_path: Path) -> None:
    mig = {"device": "gpu-0-mig-3g40gb-9-4", "uuid": "MIG-1", "gpu_instance_id": 2}
    claims = {
        "u1": PreparedClaim(
            "ml",
            "train",
            (
                PreparedDevice(("mig",), NODE, "gpu-0-mig-3g40gb-9-4", ("k=u1-x",), mig),
                PreparedDevice(("gpu",), NODE, "gpu-1", ("k=u1-gpu-1",)),
            ),
        )
    }
    path = tmp_path / "checkpoint.json"
    checkpoint.save(path, claims)
    assert checkpoint.load(path) == claims
    assert path.read_text().count('"mig": {') == 1  # a full GPU's entry has none
