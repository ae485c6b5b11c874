"""The shipped default config: every named config that targets a simulated model applies on it
and then asserts; every profile of every catalogue model has its ``all-<profile>`` config; the
balanced layouts are the reference's (mig.md §1.6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.observe import GpuState, observe
from gpu_operator.mig.placement import PlacementError
from gpu_operator.mig.plan import plan
from gpu_operator.mig.profiles import config_name
from gpu_operator.mig.spec_v1 import MigConfigEntry
from helpers.mig_tables import MIG_MODELS

OpenSim = Callable[..., Nvml]

BALANCED = {
    "A100-SXM4-40GB": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
    "A100-SXM4-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
    "A30-24GB": {"1g.6gb": 2, "2g.12gb": 1},
    "H100-SXM5-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
    "H100-NVL-94GB": {"1g.12gb": 2, "2g.24gb": 1, "3g.47gb": 1},
    "H200-141GB": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1},
    "GH200-96GB": {"1g.12gb": 2, "2g.24gb": 1, "3g.48gb": 1},
}


def resolves(entries: list[MigConfigEntry], gpu: GpuState) -> bool:
    """Whether the config's profiles exist on this GPU; a shipped config that names only
    existing profiles must never be impossible to place."""
    try:
        plan(entries, [gpu])
    except PlacementError as error:
        pytest.fail(f"a shipped config cannot be placed on {gpu.label}: {error}")
    except ConfigError as error:
        if "does not exist on this GPU" not in str(error):
            raise
        return False
    return True


@pytest.mark.parametrize("model", MIG_MODELS)
def test_every_default_config_that_targets_the_model_applies_and_asserts(
    open_sim: OpenSim, model: str
) -> None:
    nvml = open_sim(model)
    spec = default_spec()
    applied = []
    for name, entries in spec.mig_configs.items():
        gpu = observe(nvml)[0]
        if not any(e.matches(gpu.info) for e in entries):
            continue
        if not resolves(entries, gpu):
            continue
        apply_config(nvml, entries)
        assert plan(entries, observe(nvml)).empty, f"{name} does not assert after apply"
        applied.append(name)
    assert {"all-disabled", "all-enabled", "all-balanced"} <= set(applied)


@pytest.mark.parametrize("model", MIG_MODELS)
def test_every_profile_of_every_model_has_an_all_profile_config_at_its_instance_count(
    open_sim: OpenSim, model: str
) -> None:
    gpu = observe(open_sim(model))[0]
    spec = default_spec()
    for profile in gpu.profiles:
        name = f"all-{config_name(profile.name)}"
        assert name in spec.mig_configs, f"{model}: no {name}"
        matching = [e for e in spec.mig_configs[name] if e.matches(gpu.info)]
        assert matching, f"{model}: {name} has no entry for this GPU"
        assert matching[-1].wanted() == {profile.name: profile.instance_count}


@pytest.mark.parametrize("model", MIG_MODELS)
def test_all_balanced_gives_each_model_the_reference_layout(open_sim: OpenSim, model: str) -> None:
    nvml = open_sim(model)
    apply_config(nvml, default_spec().select("all-balanced"))
    assert Counter(d.profile for d in nvml.mig_devices(0)) == BALANCED[model]
