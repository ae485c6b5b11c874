"""mig-parted's v1 config: what it accepts, each validation rule of reference §3.2, errors that
name the file, line, config, entry index and key, and device-filter matching."""

from __future__ import annotations

import dataclasses

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.mig.spec_v1 import DeviceFilter, dump_spec, load_spec

GOOD = """\
version: v1
mig-configs:
  all-disabled:
    - devices: all
      mig-enabled: false
  all-enabled:
    - devices: all
      mig-enabled: true
      mig-devices: {}
  custom-config:
    - devices: [0, 1, 2, 3]
      mig-enabled: false
    - device-filter: "0x20B010DE"
      devices: [4]
      mig-enabled: true
      mig-devices:
        "1g.5gb": 7
    - device-filter: ["0x20B010DE:0x134F10DE", "0x20B110DE"]
      devices: [5]
      mig-enabled: true
      mig-devices: {"1c.3g.20gb": 3, "1g.5gb+me": 1, "2g.10gb": 0}
"""


def entry_text(body: str) -> str:
    return f"version: v1\nmig-configs:\n  broken:\n    - {body}\n"


def test_a_config_with_every_form_of_entry_loads_and_keeps_its_order() -> None:
    spec = load_spec(GOOD, "good.yaml")
    assert list(spec.mig_configs) == ["all-disabled", "all-enabled", "custom-config"]
    custom = spec.select("custom-config")
    assert [e.devices for e in custom] == [[0, 1, 2, 3], [4], [5]]
    assert custom[2].wanted() == {"1c.3g.20gb": 3, "1g.5gb+me": 1}, "zero counts drop out"
    assert [str(f) for f in custom[2].filters] == ["0x20B010DE:0x134F10DE", "0x20B110DE"]


@pytest.mark.parametrize(
    ("text", "line", "where", "problem"),
    [
        pytest.param("version: v2\nmig-configs: {}\n", 1, "version", "'v1'", id="wrong version"),
        pytest.param(
            "version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\nextra: 1\n",
            3,
            "extra",
            "unknown key",
            id="unknown top-level key",
        ),
        pytest.param("version: v1\nmig-configs: {}\n", 2, "mig-configs", "empty", id="no configs"),
        pytest.param(
            "version: v1\nmig-configs:\n  a: []\n", 3, "mig-configs.a", "empty", id="no entries"
        ),
        pytest.param(
            entry_text("{devices: all, mig-enabled: true, mig-devices: {}, color: red}"),
            4,
            "mig-configs.broken[0].color",
            "unknown key",
            id="unknown entry key",
        ),
        pytest.param(
            entry_text("{mig-enabled: false}"),
            4,
            "mig-configs.broken[0].devices",
            "required",
            id="devices missing",
        ),
        pytest.param(
            entry_text("{devices: some, mig-enabled: false}"),
            4,
            "mig-configs.broken[0].devices",
            "'all' or a list",
            id="devices neither all nor list",
        ),
        pytest.param(
            entry_text("{devices: all}"),
            4,
            "mig-configs.broken[0].mig-enabled",
            "required",
            id="mig-enabled missing",
        ),
        pytest.param(
            entry_text("{devices: all, mig-enabled: true}"),
            4,
            "mig-configs.broken[0]",
            "mig-devices is required",
            id="enabled without mig-devices",
        ),
        pytest.param(
            entry_text('{devices: all, mig-enabled: false, mig-devices: {"1g.5gb": 1}}'),
            4,
            "mig-configs.broken[0]",
            "absent or empty when mig-enabled is false",
            id="devices while disabled",
        ),
        pytest.param(
            entry_text('{devices: all, mig-enabled: true, mig-devices: {"1g.5gb": 0}}'),
            4,
            "mig-configs.broken[0].mig-devices",
            "all counts are zero",
            id="all counts zero",
        ),
        pytest.param(
            entry_text('{devices: all, mig-enabled: true, mig-devices: {"1g.5gb": -1}}'),
            4,
            'mig-configs.broken[0].mig-devices["1g.5gb"]',
            "≥ 0",
            id="negative count",
        ),
        pytest.param(
            entry_text('{devices: all, mig-enabled: true, mig-devices: {"1q.5gb": 1}}'),
            4,
            'mig-configs.broken[0].mig-devices["1q.5gb"]',
            "not a MIG profile name",
            id="unparsable profile",
        ),
        pytest.param(
            entry_text('{device-filter: "0x20B0", devices: all, mig-enabled: false}'),
            4,
            "mig-configs.broken[0].device-filter",
            "0xDDDDVVVV",
            id="malformed device filter",
        ),
        pytest.param(
            entry_text("{devices: all, mig-enabled: 1}"),
            4,
            "mig-configs.broken[0].mig-enabled",
            "true or false",
            id="mig-enabled not a bool",
        ),
    ],
)
def test_each_validation_rule_is_reported_at_its_file_line_and_key(
    text: str, line: int, where: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(text, "node.yaml")
    message = str(info.value)
    assert message.startswith(f"node.yaml:{line}: {where}: "), message
    assert problem in message


def test_an_error_in_a_later_entry_names_the_config_and_the_entry_index() -> None:
    text = GOOD.replace('"1g.5gb+me": 1', '"1g.5gb+me": "one"')
    with pytest.raises(ConfigError) as info:
        load_spec(text, "custom.yaml")
    assert str(info.value).startswith(
        'custom.yaml:21: mig-configs.custom-config[2].mig-devices["1g.5gb+me"]:'
    )


def test_invalid_yaml_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^bad.yaml:4: not valid YAML"):
        load_spec("version: v1\nmig-configs:\n  a: [\n", "bad.yaml")


def test_selecting_an_unknown_config_lists_the_known_ones() -> None:
    spec = load_spec(GOOD, "good.yaml")
    with pytest.raises(ConfigError, match=r"no config named 'all-balanced'.*custom-config"):
        spec.select("all-balanced", source="good.yaml")


def test_without_a_name_a_file_with_one_config_selects_it_and_one_with_several_refuses() -> None:
    single = load_spec("version: v1\nmig-configs:\n  only: [{devices: all, mig-enabled: false}]")
    assert single.select(None)[0].mig_enabled is False
    with pytest.raises(ConfigError, match="select one with -c"):
        load_spec(GOOD).select(None)


def gpu(index: int, device: int, subsystem: int) -> GpuInfo:
    return GpuInfo(
        index,
        "GPU-x",
        "A100",
        "0000:01:00.0",
        device,
        subsystem,
        0,
        1,
        (8, 0),
        "ampere",
        None,
        "Nvidia",
        None,
        None,
        True,
        None,
    )


def test_device_filters_match_device_id_and_optionally_the_subsystem() -> None:
    a100 = gpu(0, 0x20B010DE, 0x134F10DE)
    assert DeviceFilter.parse("0x20b010de").matches(a100), "hex is case-insensitive"
    assert DeviceFilter.parse("0x20B010DE:0x134F10DE").matches(a100)
    assert not DeviceFilter.parse("0x20B010DE:0x147F10DE").matches(a100)
    assert not DeviceFilter.parse("0x233510DE").matches(a100)


def test_an_entry_matches_by_filter_and_by_index() -> None:
    custom = load_spec(GOOD).select("custom-config")
    a100 = gpu(4, 0x20B010DE, 0x134F10DE)
    assert custom[1].matches(a100)
    assert not custom[1].matches(dataclasses.replace(a100, index=5))
    assert not custom[1].matches(dataclasses.replace(a100, pci_device_id=0x233510DE))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_dumped_spec_loads_back_equal(fmt: str) -> None:
    spec = load_spec(GOOD)
    assert load_spec(dump_spec(spec, fmt)) == spec
