"""The sandbox scheduler's allocator over the pool the driver publishes for dynamic MIG (two
H100s: counter slice apart, ``build_pool``), NVIDIA's ``mig.nvidia.com`` DeviceClass and a CEL
profile selector per claim, with the MIG preference it registers for ``gpu.nvidia.com``: over
random sequences of 1g/2g/3g/4g claims and releases it never refuses a claim while a placement
exists on some GPU with the running instances fixed (a brute-force oracle), every allocation is
one the driver accepts, and the preference ranks what it gets (a 3g on an empty GPU at slice 4).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.classes import device_classes
from gpu_operator.dra.mig_devices import MigGpu, parse_device_name, slice_content
from gpu_operator.dra.slices import GpuGroup, build_pool
from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.sandbox.dra.allocator import Allocator, Preferences, Unsatisfiable
from gpu_operator.sandbox.dra.inventory import DeviceRef, Inventory
from gpu_operator.sandbox.dra.mig import mig_preference
from helpers.dra import claim, exactly, node
from helpers.mig_dra import Instance, oracle_starts, oracle_valid
from helpers.mig_tables import profiles_of

H100 = "H100-SXM5-80GB"
NODE = "n1"
PROFILES = ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb")
GPUS = 2


def _pool() -> list[dict[str, Any]]:
    groups = []
    for minor in range(GPUS):
        gpu = MigGpu(minor, f"GPU-{minor}", profiles_of(H100))
        whole = {"name": f"gpu-{minor}", "attributes": {"type": {"string": "gpu"}}}
        content = slice_content(gpu, full_gpu=whole)
        groups.append(
            GpuGroup(f"gpu-{minor}", tuple(content["devices"]), tuple(content["sharedCounters"]))
        )
    return build_pool(NODE, groups, {}, 1)


def _allocator() -> Allocator:
    pool = _pool()
    classes = {c["metadata"]["name"]: c for c in device_classes()}
    preferences = Preferences().with_default(DRIVER_NAME, mig_preference(pool))
    return Allocator(Inventory.from_slices(pool), classes, preferences=preferences)


def _claim(i: int, profile: str) -> dict[str, Any]:
    selector = f"device.attributes['gpu.nvidia.com'].profile == '{profile}'"
    return claim(f"c{i}", exactly("mig", "mig.nvidia.com", selector))


def _instances(names: list[str]) -> dict[int, list[Instance]]:
    by_id = {p.id: p for p in profiles_of(H100)}
    out: dict[int, list[Instance]] = {m: [] for m in range(GPUS)}
    for name in names:
        found = parse_device_name(name)
        assert found is not None
        out[found.minor].append((by_id[found.profile_id], found.start))
    return out


def test_a_3g_on_empty_gpus_takes_slice_4_of_the_first() -> None:
    allocator = _allocator()
    (allocation,) = allocator.allocate([_claim(0, "3g.40gb")], node(NODE))
    assert [r.device.device for r in allocation.results] == ["gpu-0-mig-3g40gb-9-4"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("claim"), st.sampled_from(PROFILES)),
            st.tuples(st.just("release"), st.integers(0, 1000)),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_no_claim_is_refused_while_a_placement_exists(ops: list[tuple[str, Any]]) -> None:
    profiles: tuple[GpuInstanceProfile, ...] = profiles_of(H100)
    by_name = {p.name: p for p in profiles}
    allocator = _allocator()
    live: dict[int, str] = {}  # claim → device name
    for i, (op, arg) in enumerate(ops):
        if op == "release":
            if live:
                key = sorted(live)[arg % len(live)]
                allocator.release([DeviceRef(DRIVER_NAME, NODE, live.pop(key))])
            continue
        instances = _instances(list(live.values()))
        possible = any(oracle_starts(profiles, instances[m], by_name[arg]) for m in range(GPUS))
        try:
            (allocation,) = allocator.allocate([_claim(i, arg)], node(NODE))
        except Unsatisfiable:
            assert not possible, f"{arg} refused with {sorted(live.values())}"
            continue
        allocator.commit([allocation])
        (result,) = allocation.results
        live[i] = result.device.device
        after = _instances(list(live.values()))
        assert all(oracle_valid(profiles, after[m]) for m in range(GPUS)), sorted(live.values())
        found = parse_device_name(live[i])
        assert found is not None
        assert found.profile_id == by_name[arg].id
