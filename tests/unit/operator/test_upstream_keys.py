"""NVIDIA users' ClusterPolicies work unchanged: our CRD has every spec field of upstream main's
CRD with upstream's type (and the older releases' fields), the policy model accepts what the CRD
accepts, a policy with every upstream field set parses and renders, fields we do not act on are
reported ("accepted, not used"), and a key no release had is refused with the nearest name."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.crd import build_crd, spec_schema
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.openapi import paths
from gpu_operator.operator.policy_v1 import load_policy, parse_spec
from gpu_operator.operator.upstream_fields import KNOWN, NOT_USED, policy_not_used
from gpu_operator.operator.upstream_keys import POLICY_LEGACY, POLICY_MAIN
from gpu_operator.sandbox.apiserver.validation import check_schema, prune, unknown_fields
from helpers import fastyaml

ROOT = Path(__file__).parents[3]
UPSTREAM = ROOT.parent / "shared" / "upstream-artifacts"
MAIN_CRD = UPSTREAM / "crd-clusterpolicies-main.yaml"
SAMPLE = UPSTREAM / "sample-v1_clusterpolicy.yaml"


def needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} absent (NVIDIA's files for this test live in ../shared)")


def upstream_main_fields() -> dict[str, str]:
    needs(MAIN_CRD)
    return _main_fields()


@functools.cache
def _main_fields() -> dict[str, str]:
    """Read once (libyaml: the file is 150 kB); callers only read the table."""
    crd = fastyaml.load(MAIN_CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return paths(schema)


def test_the_generated_table_is_upstream_mains_crd() -> None:
    """The table's main part is exactly the fields of the upstream main CRD users have (that
    the generated files are fresh: tests/cli/operator/test_upstream_keys_fresh.py)."""
    assert upstream_main_fields() == POLICY_MAIN


def test_our_crd_has_every_field_of_upstream_main_with_the_same_type() -> None:
    ours = paths(spec_schema())
    missing = sorted(set(upstream_main_fields()) - set(ours))
    assert missing == [], f"our CRD lacks upstream fields: {missing[:20]}"
    mismatched = {
        p: (kind, ours[p]) for p, kind in upstream_main_fields().items() if ours[p] != kind
    }
    assert mismatched == {}, "type differs (upstream, ours)"


def test_our_crd_has_the_fields_earlier_releases_had() -> None:
    ours = paths(spec_schema())
    assert {p: ours.get(p) for p in POLICY_LEGACY} == POLICY_LEGACY
    assert ours["driver.use_ocp_driver_toolkit"] == "boolean"
    assert ours["toolkit.securityContext.seLinuxOptions.level"] == "string"


def sample_value(kind: str, path: str) -> Any:
    """A valid value of an upstream type (enums and known formats get a value of theirs)."""
    specials: dict[str, Any] = {
        "mig.strategy": "mixed",
        "driver.kernelModuleType": "open",
        "daemonsets.updateStrategy": "OnDelete",
        "sandboxWorkloads.defaultWorkload": "container",
        "sandboxWorkloads.mode": "kubevirt",
        "ccManager.defaultMode": "on",
        "migManager.config.default": "all-disabled",
        "operator.defaultRuntime": "containerd",
        "daemonsets.rollingUpdate.maxUnavailable": "10%",
        "driver.upgradePolicy.maxUnavailable": "25%",
    }
    if path in specials:
        return specials[path]
    name = path.rsplit(".", 1)[-1]
    if name == "imagePullPolicy":
        return "IfNotPresent"
    if name in ("version", "image", "repository"):
        return {"version": "v1.0.0", "image": "img", "repository": "example.com/r"}[name]
    if kind.startswith("map<"):
        return {"k": "1"}
    scalars: dict[str, Any] = {
        "string": "x",
        "boolean": True,
        "integer": 1,
        "number": 1,
        "int-or-string": "1",
        "object": {},
    }
    if kind in scalars:
        return scalars[kind]
    return None  # struct / array<struct>: built from their children


def every_field_set(table: dict[str, str]) -> dict[str, Any]:
    """A spec with every field of ``table`` set (list items: one item with every field)."""
    spec: dict[str, Any] = {}
    for path in sorted(table, key=lambda p: (p.count("."), p)):
        node: Any = spec
        *parents, name = path.split(".")
        for step in parents:
            if step.endswith("[]"):
                node = node.setdefault(step[:-2], [{}])[0]
            else:
                node = node.setdefault(step, {})
        kind = table[path]
        if kind == "struct":
            node.setdefault(name, {})
        elif kind.startswith("array<"):
            inner = kind[6:-1]
            node.setdefault(name, [{}] if inner == "struct" else [sample_value(inner, path)])
        else:
            node[name] = sample_value(kind, path)
    return spec


def test_a_policy_with_every_upstream_field_set_parses_renders_and_fits_our_crd() -> None:
    data = every_field_set(KNOWN)
    schema = spec_schema()
    assert check_schema(data, schema) == []
    assert unknown_fields(data, schema) == []
    spec = parse_spec(data, source="every-field")
    node = NodeFacts(
        name="gpu-1",
        labels={
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
            "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
            "feature.node.kubernetes.io/kernel-version.full": "5.15.0-1-generic",
        },
        annotations={},
    )
    desired = desired_state(spec, [node], policy_uid="u")
    # driver.useNvidiaDriverCRD is set: the driver comes from NVIDIADriver CRs (none here).
    (driver,) = [s for s in desired.states if s.name == "state-driver"]
    assert "no NVIDIADriver drives a GPU node" in str(driver.rendered.skipped)
    assert any(o["kind"] == "DaemonSet" for o in desired.objects())
    reported = {line.split(":", 1)[0] for line in spec.not_used}
    # Every field that does nothing here is named (the whole section where one is listed).
    assert {"spec.gds", "spec.gdrcopy", "spec.kataManager", "spec.psp"} <= reported
    assert "spec.driver.useNvidiaDriverCRD" not in reported  # acted on
    assert "spec.dcgmExporter.hpcJobMapping" in reported
    assert "spec.driver.securityContext" not in reported  # v1.9-era, acted on


def test_nvidias_sample_clusterpolicy_parses_fits_our_crd_and_reports_what_it_sets() -> None:
    needs(SAMPLE)
    doc = fastyaml.load(SAMPLE.read_text())
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert unknown_fields(doc["spec"], schema) == []
    # As the API server does: a null of a non-nullable field (the sample's `plugin:`) is pruned.
    assert check_schema(prune(doc["spec"], schema), schema) == []
    name, spec = load_policy(SAMPLE.read_text(), source=str(SAMPLE))
    assert name == "gpu-cluster-policy"
    assert spec.vgpuManager is not None
    assert spec.vgpuManager.kernelModuleConfig is not None
    assert spec.not_used == [
        "spec.operator.use_ocp_driver_toolkit: no OpenShift Driver Toolkit builds"
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"driver": {"verison": "1"}},
            "spec.driver.verison: unknown field (no release of NVIDIA's ClusterPolicy has it); "
            "did you mean spec.driver.version?",
            id="nested",
        ),
        pytest.param(
            {"validator": {"hostNetwrk": True}},
            "did you mean spec.validator.hostNetwork?",
            id="a field the model did not have before",
        ),
        pytest.param({"devicePlugn": {}}, "spec.devicePlugn: unknown field", id="a section"),
        pytest.param(
            {"toolkit": {"env": [{"nmae": "A", "value": "1"}]}},
            "spec.toolkit.env[].nmae: unknown field",
            id="inside a list item",
        ),
        pytest.param(
            {"dcgm": {"securityContext": {"priviledged": True}}},
            "",
            id="a free-form v1.9 field takes what Kubernetes takes",
        ),
    ],
)
def test_a_typo_is_refused_naming_the_key_and_the_nearest_name(
    spec: dict[str, Any], message: str
) -> None:
    if not message:
        parse_spec(spec, source="p.yaml")
        return
    with pytest.raises(ConfigError) as caught:
        parse_spec(spec, source="p.yaml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_upstream_only_field_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"spec.driver.use_ocp_driver_toolkit: expected boolean"):
        parse_spec({"driver": {"use_ocp_driver_toolkit": "yes"}}, source="p.yaml")


def test_sections_switched_off_report_nothing_and_vm_operands_only_with_sandbox_workloads() -> None:
    quiet = parse_spec(
        {"gds": {"enabled": False, "version": "2.29.4"}, "vgpuManager": {"enabled": True}},
        source="p",
    )
    assert quiet.not_used == []
    loud = parse_spec(
        {"sandboxWorkloads": {"enabled": True}, "vgpuManager": {"enabled": True}}, source="p"
    )
    assert loud.not_used == [
        "spec.sandboxWorkloads: VM workloads (vm-passthrough, vm-vgpu) are not implemented",
        "spec.vgpuManager: VM and confidential-computing operands are not implemented",
    ]


def test_every_not_used_entry_names_an_upstream_field_and_the_docs_list_them() -> None:
    docs = (ROOT / "docs" / "comparison.md").read_text()
    for path, why in policy_not_used():
        assert path in KNOWN, path
        assert f"| `{path}` | {why} |" in docs
    assert set(NOT_USED) <= {p for p, _ in policy_not_used()}


def test_every_generator_input_names_where_it_came_from() -> None:
    """Each upstream file the generator reads has a row in the inputs README naming its source
    (repository and commit, or the shared copy it is), and every row names a file that exists."""
    inputs = ROOT / "scripts" / "upstream-inputs"
    rows = {
        line.split("`", 2)[1]: line
        for line in (inputs / "README.md").read_text().splitlines()
        if line.startswith("| `")
    }
    files = {p.name for p in inputs.glob("*.yaml")}
    assert sorted(files - set(rows)) == []
    assert sorted(set(rows) - files) == []
    for name, row in rows.items():
        source = row.rsplit("|", 2)[-2]
        assert any(word in source for word in ("/", "copy of", "not a fetched file")), name


def test_a_v1_8_policy_with_a_repo_destination_dir_is_accepted_and_reported() -> None:
    """v1.8.0's CRD had driver.repoConfig.destinationDir (gone by v1.9.0): a policy carrying
    it fits our CRD, parses, keeps the ConfigMap, and says the directory does nothing here."""
    data = {"driver": {"repoConfig": {"configMapName": "repos", "destinationDir": "/etc/yum"}}}
    schema = spec_schema()
    # (only the driver section is given: the sections the CRD requires are left out)
    assert [e for e in check_schema(data, schema) if e[0].startswith("driver")] == []
    assert unknown_fields(data, schema) == []
    spec = parse_spec(data, source="v1.8 policy")
    assert spec.driver.repoConfig is not None
    assert spec.driver.repoConfig.configMapName == "repos"
    assert (
        "spec.driver.repoConfig.destinationDir: the repo files are mounted where the OS "
        "expects them" in spec.not_used
    )
    assert POLICY_LEGACY["driver.repoConfig.destinationDir"] == "string"


def test_a_v1_10_security_context_with_host_process_fits_our_crd_and_parses() -> None:
    """v1.10's operand securityContext is Kubernetes 1.22's, with windowsOptions.hostProcess
    (the v1.9.0 one lacks it): a policy setting it fits our CRD and reaches the model."""
    context = {"privileged": True, "windowsOptions": {"hostProcess": False}}
    data = {"driver": {"securityContext": context}, "gfd": {"securityContext": context}}
    schema = spec_schema()
    assert [e for e in check_schema(data, schema) if e[0].split(".")[0] in data] == []
    assert unknown_fields(data, schema) == []
    spec = parse_spec(data, source="v1.10 policy")
    assert spec.driver.securityContext == context
    assert spec.gfd.securityContext == context
    assert POLICY_LEGACY["gfd.securityContext.windowsOptions.hostProcess"] == "boolean"
