"""The ClusterPolicy model takes upstream CRs unchanged, defaults as upstream does, refuses
typos and bad enums naming the field, and lists the deprecated fields it ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.operator.policy_v1 import (
    ClusterPolicySpec,
    deprecations,
    enabled,
    load_policy,
    parse_spec,
)

UPSTREAM_CR = (Path(__file__).parents[2] / "data" / "operator" / "upstream-cr.yaml").read_text()


def test_an_upstream_cr_with_every_section_parses_unchanged() -> None:
    name, spec = load_policy(UPSTREAM_CR, source="upstream.yaml")
    assert name == "cluster-policy"
    assert spec.driver.upgradePolicy is not None
    assert spec.driver.upgradePolicy.maxUnavailable == "25%"
    assert spec.kataManager is not None
    assert spec.kataManager.config == {
        "artifactsDir": "/opt/nvidia-gpu-operator/artifacts/runtimeclasses"
    }


def test_the_deprecated_fields_an_upstream_cr_sets_are_listed() -> None:
    _, spec = load_policy(UPSTREAM_CR, source="upstream.yaml")
    assert deprecations(spec) == [
        "operator.defaultRuntime",
        "operator.initContainer",
        "driver.useOpenKernelModules",
        "cdi.default",
        "psp",
        "kataManager",
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        pytest.param("driver", True, id="driver is on when enabled is unset"),
        pytest.param("toolkit", True, id="toolkit is on when unset"),
        pytest.param("dcgm", True, id="dcgm is on in the type (Helm turns it off)"),
        pytest.param("nodeStatusExporter", False, id="node status exporter is off when unset"),
        pytest.param("gds", False, id="an absent optional section is off"),
        pytest.param("cdi", True, id="cdi is on when unset"),
    ],
)
def test_an_unset_enabled_flag_takes_the_upstream_default(section: str, expected: bool) -> None:
    assert enabled(ClusterPolicySpec(), section) is expected


def test_an_explicit_enabled_flag_wins_over_the_default() -> None:
    spec = parse_spec(
        {"driver": {"enabled": False}, "nodeStatusExporter": {"enabled": True}}, source="t"
    )
    assert not enabled(spec, "driver")
    assert enabled(spec, "nodeStatusExporter")


def test_a_typo_is_an_error_naming_the_field_and_the_file() -> None:
    typo = r"policy.yaml: spec.driver.verison: unknown field .*did you mean spec.driver.version\?"
    with pytest.raises(ConfigError, match=typo):
        parse_spec({"driver": {"verison": "1"}}, source="policy.yaml")


def test_a_bad_enum_is_an_error_naming_the_allowed_values() -> None:
    with pytest.raises(
        ConfigError, match=r"spec.mig.strategy: Input should be 'none', 'single' or 'mixed'"
    ):
        parse_spec({"mig": {"strategy": "Mixed"}}, source="p")


def test_a_document_that_is_not_a_cluster_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"must be nvidia\.com/v1 ClusterPolicy"):
        load_policy("apiVersion: v1\nkind: ConfigMap\n", source="x.yaml")


def test_the_os_alias_table_is_our_own_field_under_driver() -> None:
    spec = parse_spec({"driver": {"osAliases": {"almalinux": "rhel"}}}, source="p")
    assert spec.driver.osAliases == {"almalinux": "rhel"}
