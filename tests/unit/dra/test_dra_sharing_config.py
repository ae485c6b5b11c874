"""The claim's opaque config as upstream's ``resource.nvidia.com/v1beta1`` API reads it:
decoding (strict: unknown fields and kinds refused), defaults, validation with the field named,
and which config each device gets (class before claim, later before earlier, a request named
before none, the type checked)."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.dra.claims import ClaimError, ClaimRef
from gpu_operator.dra.sharing_config import (
    DEFAULT_GPU,
    ConfigProblem,
    daemon_id,
    decode,
    groups,
    pinned_limits,
    quantity_bytes,
)

REF = ClaimRef("ml", "train", "8e3c-4f00-aa11")


def gpu_config(sharing: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig"}
    if sharing is not None:
        body["sharing"] = sharing
    return {**body, **extra}


def entry(source: str, params: dict[str, Any], requests: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": source,
        "opaque": {"driver": "gpu.nvidia.com", "parameters": params},
    }
    if requests:
        out["requests"] = requests
    return out


def allocation(*configs: dict[str, Any]) -> dict[str, Any]:
    return {"devices": {"results": [], "config": list(configs)}}


def test_time_slicing_decodes_with_upstreams_defaults() -> None:
    assert decode(gpu_config(), "x").strategy == "TimeSlicing"  # no sharing: time-slicing
    ts = decode(gpu_config({"strategy": "TimeSlicing"}), "x")
    assert (ts.kind, ts.strategy, ts.interval) == ("GpuConfig", "TimeSlicing", "Default")
    long = decode(
        gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}), "x"
    )
    assert long.interval == "Long"


def test_mps_decodes_its_limits() -> None:
    mps = decode(
        gpu_config(
            {
                "strategy": "MPS",
                "mpsConfig": {
                    "defaultActiveThreadPercentage": 50,
                    "defaultPinnedDeviceMemoryLimit": "10Gi",
                    "defaultPerDevicePinnedMemoryLimit": {"1": "5Gi"},
                },
            }
        ),
        "x",
    )
    assert mps.strategy == "MPS"
    assert mps.mps is not None
    assert mps.mps.active_thread_percentage == 50
    assert pinned_limits(mps.mps, ["GPU-a", "GPU-b"], "x") == {"GPU-a": "10240M", "GPU-b": "5120M"}
    assert decode(gpu_config({"strategy": "MPS"}), "x").mps is not None  # mpsConfig defaulted


@pytest.mark.parametrize(
    ("params", "says"),
    [
        (
            {**gpu_config(), "apiVersion": "resource.nvidia.com/v1"},
            "apiVersion: 'resource.nvidia.com/v1' is not",
        ),
        (
            {**gpu_config(), "kind": "GpuConfg"},
            "kind: 'GpuConfg' is not a configuration of driver gpu.nvidia.com",
        ),
        (
            gpu_config({"strategy": "Sliced"}),
            "sharing.strategy: unknown GPU sharing strategy: Sliced",
        ),
        (
            gpu_config({"strategy": "Fabric"}),
            "sharing.strategy: fabric GPU sharing strategy is not enabled",
        ),
        (
            gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Forever"}}),
            "sharing.timeSlicingConfig.interval: unknown time-slice interval: Forever",
        ),
        (
            gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"intervall": "Long"}}),
            "sharing.timeSlicingConfig.intervall: unknown field",
        ),
        (gpu_config(sharing={"strategy": "MPS"}, shareing={}), "shareing: unknown field"),
        (
            gpu_config({"strategy": "TimeSlicing", "mpsConfig": {}}),
            "sharing.mpsConfig: cannot use MpsConfig with the 'TimeSlicing' strategy",
        ),
        (
            gpu_config({"strategy": "MPS", "timeSlicingConfig": {}}),
            "sharing.timeSlicingConfig: cannot use TimeSlicingConfig with the 'MPS' strategy",
        ),
        (
            gpu_config({"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 101}}),
            "sharing.mpsConfig.defaultActiveThreadPercentage: active thread percentage must not "
            "be greater than 100",
        ),
        (
            gpu_config({"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": -1}}),
            "sharing.mpsConfig.defaultActiveThreadPercentage: active thread percentage must not "
            "be negative",
        ),
        (
            gpu_config({"strategy": "MPS", "mpsConfig": {"defaultPinnedDeviceMemoryLimit": "1Ki"}}),
            "sharing.mpsConfig.defaultPinnedDeviceMemoryLimit: invalid limit: value set too low: "
            "1Ki",
        ),
        (
            gpu_config(
                {"strategy": "MPS", "mpsConfig": {"defaultPinnedDeviceMemoryLimit": "lots"}}
            ),
            "sharing.mpsConfig.defaultPinnedDeviceMemoryLimit: 'lots' is not a quantity",
        ),
        (
            {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig"},
            "sharing: no sharing strategy set",
        ),
        (
            {
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "MigDeviceConfig",
                "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {}},
            },
            "sharing.timeSlicingConfig: unknown field (allowed: strategy, mpsConfig)",
        ),
        ("not an object", "must be an object, not str"),
    ],
)
def test_a_wrong_config_is_refused_naming_the_field(params: Any, says: str) -> None:
    with pytest.raises(ConfigProblem) as raised:
        decode(params, "x")
    assert says in str(raised.value)


def test_the_claims_error_names_the_config_entry_and_the_field() -> None:
    bad = entry(
        "FromClaim",
        gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Forever"}}),
    )
    with pytest.raises(ClaimError) as raised:
        groups(
            REF,
            allocation(entry("FromClass", gpu_config()), bad),
            [("gpus", "gpu-0")],
            {"gpu-0": "gpu"},
        )
    assert str(raised.value) == (
        "ResourceClaim ml/train: status.allocation.devices.config[1] (FromClaim): "
        "sharing.timeSlicingConfig.interval: unknown time-slice interval: Forever "
        "(one of Default, Short, Medium, Long)"
    )


def test_other_drivers_configs_are_skipped_and_non_opaque_ones_refused() -> None:
    other = {"source": "FromClaim", "opaque": {"driver": "net.example.com", "parameters": {"x": 1}}}
    (group,) = groups(REF, allocation(other), [("gpus", "gpu-0")], {"gpu-0": "gpu"})
    assert group.sharing == DEFAULT_GPU
    with pytest.raises(ClaimError, match=r"config\[0\] \(FromClaim\): only opaque parameters"):
        groups(REF, allocation({"source": "FromClaim"}), [("gpus", "gpu-0")], {"gpu-0": "gpu"})
    with pytest.raises(ClaimError, match=r"config\[0\]\.source: invalid config source: Elsewhere"):
        groups(REF, allocation({"source": "Elsewhere"}), [("gpus", "gpu-0")], {"gpu-0": "gpu"})


def ts(interval: str) -> dict[str, Any]:
    return gpu_config({"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": interval}})


def test_the_claim_overrides_the_class_and_the_latest_config_that_fits_wins() -> None:
    """Upstream's search: from the highest precedence down, the first config that names the
    result's request or names no request at all (and fits the device type)."""
    kinds = {"gpu-0": "gpu", "gpu-1": "gpu", "gpu-2": "gpu"}
    results = [("a", "gpu-0"), ("b", "gpu-1"), ("c", "gpu-2")]
    class_only = groups(
        REF,
        allocation(entry("FromClass", ts("Long"), ["a"]), entry("FromClass", ts("Medium"), ["b"])),
        results,
        kinds,
    )
    assert {d: g.sharing.interval for g in class_only for d in g.devices} == {
        "gpu-0": "Long",
        "gpu-1": "Medium",
        "gpu-2": "Default",  # no config: upstream's default GpuConfig
    }
    assert [g.sharing.where for g in class_only if "gpu-2" in g.devices] == ["default"]
    with_claim = groups(
        REF,
        allocation(
            # The API lists class configs first; a claim config outranks them wherever listed.
            entry("FromClaim", ts("Short")),  # every request of the claim
            entry("FromClass", ts("Long"), ["a"]),
            entry("FromClass", ts("Medium"), ["b"]),
            entry("FromClaim", gpu_config({"strategy": "MPS"}), ["b"]),
        ),
        results,
        kinds,
    )
    by_device = {d: g.sharing for g in with_claim for d in g.devices}
    assert by_device["gpu-0"].interval == "Short"  # the claim's config for all beats the class's
    assert by_device["gpu-1"].strategy == "MPS"  # the claim's config naming b is the latest
    assert by_device["gpu-2"].interval == "Short"
    assert by_device["gpu-1"].where == "status.allocation.devices.config[3] (FromClaim)"


def test_devices_sharing_one_config_form_one_group() -> None:
    found = groups(
        REF,
        allocation(entry("FromClaim", ts("Medium"))),
        [("gpus", "gpu-0"), ("gpus", "gpu-3")],
        {"gpu-0": "gpu", "gpu-3": "gpu"},
    )
    assert [(g.sharing.interval, g.devices) for g in found] == [("Medium", ["gpu-0", "gpu-3"])]


def test_a_config_of_the_wrong_device_type_is_refused_when_named_and_skipped_when_not() -> None:
    mig = {
        "apiVersion": "resource.nvidia.com/v1beta1",
        "kind": "MigDeviceConfig",
        "sharing": {"strategy": "TimeSlicing"},
    }
    with pytest.raises(ClaimError) as raised:
        groups(
            REF,
            allocation(entry("FromClaim", mig, ["gpus"])),
            [("gpus", "gpu-0")],
            {"gpu-0": "gpu"},
        )
    assert str(raised.value).endswith(
        "config[0] (FromClaim): cannot apply MigDeviceConfig to device gpu-0 of type gpu "
        "(request: gpus)"
    )
    (group,) = groups(
        REF, allocation(entry("FromClaim", mig)), [("gpus", "gpu-0")], {"gpu-0": "gpu"}
    )
    assert group.sharing == DEFAULT_GPU


def test_per_device_limits_name_a_gpu_by_uuid_or_index_in_the_claim() -> None:
    mps = decode(
        gpu_config(
            {
                "strategy": "MPS",
                "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"GPU-b": "2Gi", "0": "1G"}},
            }
        ),
        "w",
    ).mps
    assert mps is not None
    assert pinned_limits(mps, ["GPU-a", "GPU-b"], "w") == {"GPU-b": "2048M", "GPU-a": "953M"}
    third = {"strategy": "MPS", "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"2": "1Gi"}}}
    settings = decode(gpu_config(third), "w").mps
    assert settings is not None
    with pytest.raises(ConfigProblem, match=r"PinnedMemoryLimit\[2\]: invalid device"):
        pinned_limits(settings, ["GPU-a"], "w")


def test_quantities_and_the_daemon_id() -> None:
    assert quantity_bytes("10Gi", "x") == 10 * 2**30
    assert quantity_bytes("1.5Mi", "x") == 3 * 2**19
    assert quantity_bytes("2G", "x") == 2 * 10**9
    assert quantity_bytes(4096, "x") == 4096
    ident = daemon_id("uid", ["GPU-a", "GPU-b"])
    assert ident.startswith("uid-")
    assert len(ident) == len("uid-") + 5
    assert ident != daemon_id("uid", ["GPU-a"])
