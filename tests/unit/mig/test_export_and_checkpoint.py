"""export, generate-config, checkpoint and restore on simulated nodes: round trips through the
same plan/apply path, and generated configs that match mig-parted's generator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import apply_config, apply_plan
from gpu_operator.mig.checkpoint import checkpoint, dump_checkpoint, load_checkpoint, restore_plan
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.export import export_spec, generate_spec
from gpu_operator.mig.observe import observe
from gpu_operator.mig.plan import plan
from gpu_operator.mig.spec_v1 import dump_spec, load_spec

OpenSim = Callable[..., Nvml]


def test_export_of_a_uniform_node_is_one_entry_for_all_gpus_that_asserts(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("dgx-a100")
    apply_config(nvml, default_spec().select("all-balanced"))
    spec = load_spec(dump_spec(export_spec(observe(nvml), "mine")))
    (entry,) = spec.select("mine")
    assert entry.devices == "all"
    assert entry.mig_devices == {"3g.20gb": 1, "2g.10gb": 1, "1g.5gb": 2}
    assert plan(spec.select("mine"), observe(nvml)).empty


def test_export_of_a_mixed_node_lists_gpu_indexes_per_layout_and_round_trips(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("a30x4")
    text = """version: v1
mig-configs:
  mixed:
    - {devices: [0, 1], mig-enabled: false}
    - {devices: [2], mig-enabled: true, mig-devices: {"4g.24gb": 1}}
    - {devices: [3], mig-enabled: true, mig-devices: {"1c.2g.12gb": 2, "1g.6gb": 2}}
"""
    apply_config(nvml, load_spec(text).select("mixed"))
    exported = export_spec(observe(nvml))
    assert [e.devices for e in exported.select("current")] == [[0, 1], [2], [3]]
    assert plan(exported.select("current"), observe(nvml)).empty


def test_export_of_a_node_without_mig_says_disabled(open_sim: OpenSim) -> None:
    (entry,) = export_spec(observe(open_sim("t4"))).select("current")
    assert (entry.devices, entry.mig_enabled) == ("all", False)


def test_generated_config_for_h200_has_every_profile_and_the_balanced_formula(
    open_sim: OpenSim,
) -> None:
    spec = generate_spec(observe(open_sim("h200")))
    assert list(spec.mig_configs) == [
        "all-disabled",
        "all-enabled",
        "all-1g.18gb",
        "all-1g.18gb.me",
        "all-1g.35gb",
        "all-2g.35gb",
        "all-3g.71gb",
        "all-4g.71gb",
        "all-7g.141gb",
        "all-balanced",
    ]
    assert spec.select("all-balanced")[0].wanted() == {"3g.71gb": 1, "2g.35gb": 1, "1g.18gb": 2}
    assert spec.select("all-1g.18gb")[0].device_filter is None, "one model: no device filters"


def test_generated_config_for_two_models_filters_by_device_and_applies(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("a30x2,h100x2")
    spec = generate_spec(observe(nvml))
    filters = [e.device_filter for e in spec.select("all-balanced")]
    assert filters == ["0x20B710DE", "0x233010DE"]
    apply_config(nvml, spec.select("all-balanced"))
    assert Counter(d.profile for d in nvml.mig_devices(0)) == {"1g.6gb": 2, "2g.12gb": 1}
    assert Counter(d.profile for d in nvml.mig_devices(3)) == {
        "1g.10gb": 2,
        "2g.20gb": 1,
        "3g.40gb": 1,
    }


def test_checkpoint_then_restore_brings_back_modes_placements_and_compute_instances(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("hgx-h100")
    text = """version: v1
mig-configs:
  c:
    - {devices: [0], mig-enabled: true, mig-devices: {"1c.3g.40gb": 1, "2c.3g.40gb": 1}}
    - {devices: [1], mig-enabled: true, mig-devices: {"1g.10gb": 3}}
"""
    apply_config(nvml, load_spec(text).select("c"))
    saved = load_checkpoint(dump_checkpoint(checkpoint(observe(nvml))))
    before = [
        (g.gpu_index, g.profile_name, g.placement) for i in range(8) for g in nvml.gpu_instances(i)
    ]

    apply_config(nvml, default_spec().select("all-disabled"))
    assert restore_plan(saved, observe(nvml)).changes
    apply_plan(nvml, restore_plan(saved, observe(nvml)))

    after = [
        (g.gpu_index, g.profile_name, g.placement) for i in range(8) for g in nvml.gpu_instances(i)
    ]
    assert after == before
    assert Counter(d.profile for d in nvml.mig_devices(0)) == {"1c.3g.40gb": 1, "2c.3g.40gb": 1}
    assert restore_plan(saved, observe(nvml)).empty
