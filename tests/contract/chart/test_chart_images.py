"""What an upstream version pin means, through the real ``helm``: the seed's full command and
NVIDIA's own values files render only images that exist — ours with our tag, or NVIDIA's image of
that operand with the tag the user (or NVIDIA's file) gave — in the ClusterPolicy, the operator
Deployment's env, the chart's pods and every DaemonSet the operator then renders; the operator
stays ours and NOTES, the ClusterPolicy annotation and ``gpu-operator images`` say so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.commands.images import operator_environ
from gpu_operator.operator.cluster import node_facts
from gpu_operator.operator.images import IMAGE_ENV, image_path
from gpu_operator.operator.inventory import pod_images, policy_images
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, parse_spec
from gpu_operator.operator.upstream_images import (
    NOTES_ANNOTATION,
    OUR_RELEASES,
    is_ours,
    known_nvidia_images,
    nvidia_image,
    split_reference,
)
from helpers.seed import SEED_SET_ARGS

ROOT = Path(__file__).parents[3]
CHART = ROOT / "deployments" / "gpu-operator"
HELM = shutil.which("helm", path=str(ROOT / ".tools")) or shutil.which("helm")
DATA = ROOT / "tests" / "data" / "operator"
UPSTREAM = ROOT.parent / "shared" / "upstream-artifacts"

pytestmark = pytest.mark.skipif(HELM is None, reason="helm not found (make test fetches it)")

SEED = SEED_SET_ARGS  # the seed's command, verbatim (issue 14)
# Tags the seed gives (the image:tag in operator.initContainer.version read as its tag), and
# the driver's with the OS suffix the operator adds per node pool (Rocky 8.5 → rocky8).
SEED_TAGS = {
    "v0.2.0-ubi8", "1.7.2-ubi8", "2.3.1-ubi8", "11.2.1-base-ubi8", "v1.9.0-ubi8",
    "450.156.00", "450.156.00-rocky8",
}  # fmt: skip
# Every operand, and dcgm on, so the test sees each image the seed could pull.
ALL_ON = ["--set", "dcgm.enabled=true", "--set", "nodeStatusExporter.enabled=true"]
POLICY_SECTIONS = (
    "driver", "driver.manager", "toolkit", "devicePlugin", "dcgm", "dcgmExporter", "gfd",
    "migManager", "validator", "nodeStatusExporter", "operator.initContainer",
)  # fmt: skip


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60, check=False)


def render(*args: str) -> list[dict[str, Any]]:
    result = helm("template", "gpu-operator", str(CHART), "-n", "gpu-operator-resources", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def upstream_values(name: str) -> list[str]:
    path = UPSTREAM / name
    if not path.exists():
        pytest.skip(f"{path} missing (NVIDIA's values files live in ../shared)")
    # Another part of the work makes our schema accept every upstream key (issue 20); the
    # image rule is tested here whatever the schema says today.
    return ["-f", str(path), "--skip-schema-validation"]


def the_policy(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (cr,) = [o for o in objects if o["kind"] == "ClusterPolicy"]
    return cr


def section(spec: ClusterPolicySpec, path: str) -> Any:
    node: Any = spec
    for part in path.split("."):
        node = getattr(node, part, None) if node is not None else None
    return node


def every_image(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """image -> where: the chart's pods, the operator's *_IMAGE env, each ClusterPolicy image
    section, and every DaemonSet the operator renders from the policy on the seed's nodes."""
    where: dict[str, set[str]] = {}
    cr = the_policy(objects)
    spec = parse_spec(cr["spec"], source="helm template")
    env = dict(operator_environ(objects))
    for name, value in env.items():
        where.setdefault(value, set()).add(f"env {name}")
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet", "Job"):
            for use in pod_images(obj):
                where.setdefault(use.image, set()).add(use.used_by)
    for path in POLICY_SECTIONS:
        given = section(spec, path)
        if given is not None and (given.repository or given.image or given.version):
            where.setdefault(image_path(given, path, env), set()).add(f"spec.{path}")
    nodes = [node_facts(n) for n in yaml.safe_load((DATA / "seed" / "nodes.yaml").read_text())]
    for use in policy_images(spec, nodes, env):
        where.setdefault(use.image, set()).add(f"operator: {use.used_by}")
    return where


def assert_exists(image: str, nvidia_tags: set[str], where: set[str]) -> None:
    """Ours with one of our tags, or NVIDIA's known image (in any mirror of nvcr.io) with a
    tag that was given for it — never a mix."""
    repository, name, tag = split_reference(image)
    if is_ours(image):
        assert tag in OUR_RELEASES, f"{image} ({where}): a tag of ours that does not exist"
        return
    upstream_repo = repository[repository.index("nvcr.io/") :] if "nvcr.io/" in repository else ""
    assert (upstream_repo, name) in known_nvidia_images(), f"{image} ({where}): unknown image"
    assert tag in nvidia_tags, f"{image} ({where}): NVIDIA's image with a tag nobody gave"


def test_the_seed_command_renders_no_image_that_does_not_exist() -> None:
    where = every_image(render(*SEED, *ALL_ON))
    for image, users in where.items():
        assert_exists(image, SEED_TAGS, users)
    assert set(where) >= {
        "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
        "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.2.0-ubi8",
        "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
        "nvcr.io/nvidia/cloud-native/dcgm:2.3.1-ubi8",
        "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8",
        "nvcr.io/nvidia/cuda:11.2.1-base-ubi8",
        "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8",
    }
    assert not [i for i in where if i.endswith(":v1.9.0-ubi8") and is_ours(i)]


def test_the_operator_stays_ours_and_its_deployment_env_names_our_image() -> None:
    objects = render(*SEED)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    assert main["image"] == "ghcr.io/gpu-operator/gpu-operator:v0.1.0"
    env = operator_environ(objects)
    assert set(env) == {
        "VALIDATOR_IMAGE", "CONTAINER_TOOLKIT_IMAGE", "DEVICE_PLUGIN_IMAGE",
        "DCGM_EXPORTER_IMAGE", "GFD_IMAGE", "MIG_MANAGER_IMAGE", "DRIVER_MANAGER_IMAGE",
        "DRA_DRIVER_IMAGE",
    }  # fmt: skip
    assert set(env.values()) == {"ghcr.io/gpu-operator/gpu-operator:v0.1.0"}


SEED_NOTES = [
    "operator.version=v1.9.0-ubi8: not a release of gpu-operator (an NVIDIA operator version?); "
    "we are the operator, so it runs our ghcr.io/gpu-operator/gpu-operator:v0.1.0",
    "driver.manager.version=v0.2.0-ubi8: NVIDIA's driver.manager image, "
    "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.2.0-ubi8",
    "toolkit.version=1.7.2-ubi8: NVIDIA's toolkit image, "
    "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
    "validator.version=v1.9.0-ubi8: NVIDIA's validator image, "
    "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8",
    "operator.initContainer.version=cuda:11.2.1-base-ubi8: an image:tag in a version field, "
    "read as NVIDIA's nvcr.io/nvidia/cuda:11.2.1-base-ubi8",
]


def test_install_notes_and_the_policy_annotation_say_what_each_pin_became() -> None:
    result = helm("install", "x", str(CHART), "--dry-run=client", "-n", "g", *SEED)
    assert result.returncode == 0, result.stderr
    notes = result.stdout[result.stdout.index("NOTES:") :]
    for line in SEED_NOTES:
        assert line in notes
    annotation = the_policy(render(*SEED))["metadata"]["annotations"][NOTES_ANNOTATION]
    assert all(line in annotation for line in SEED_NOTES)
    assert len(annotation.splitlines()) == len(SEED_NOTES)


def test_gpu_operator_images_and_preflight_print_the_same_decisions(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(helm("template", "x", str(CHART), "-n", "g", *SEED).stdout)
    runner = CliRunner()
    env = {k: "" for k in IMAGE_ENV.values() if k in os.environ}  # the stream's env decides
    for command in (["images"], ["preflight"]):
        result = runner.invoke(
            app, [*command, "-f", str(rendered), "--node-os", "rocky:8.5"], env=env
        )
        assert result.exit_code == 0, result.output
        for line in SEED_NOTES:
            assert f"note: {line}" in result.stderr
    listed = runner.invoke(app, ["images", "-f", str(rendered), "--node-os", "rocky:8.5"]).stdout
    images = {line.split()[0] for line in listed.splitlines()}
    assert images == {
        "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
        "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8",
        "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v1.9.0-ubi8",
        "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.2.0-ubi8",
        "nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8",
    }


def tags_in(values_file: Path) -> set[str]:
    """Every version an upstream values file gives (NVIDIA's tags)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "version" and value:
                    found.add(str(value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(values_file.read_text()))
    return found


@pytest.mark.parametrize("name", ["values-main.yaml", "values-v1.9.0.yaml"])
@pytest.mark.parametrize("extra", [[], SEED], ids=["file alone", "file + the seed's --set"])
def test_an_upstream_values_file_renders_nvidias_images_with_nvidias_tags_or_ours_with_ours(
    name: str, extra: list[str]
) -> None:
    objects = render(*upstream_values(name), *ALL_ON, *extra)
    tags = tags_in(UPSTREAM / name) | (SEED_TAGS if extra else set())
    tags |= {f"{t}-{os}" for t in tags for os in ("rocky8", "ubuntu22.04")}  # driver pools
    where = every_image(objects)
    for image, users in where.items():
        assert_exists(image, tags, users)
    assert "nvcr.io/nvidia/gpu-operator:v0.1.0" not in where
    assert "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v0.1.0" not in where
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert is_ours(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
    notes = the_policy(objects)["metadata"]["annotations"][NOTES_ANNOTATION].splitlines()
    assert notes[0].startswith("operator.repository=nvcr.io/nvidia: NVIDIA's operator image")
    if not extra:  # NVIDIA's validator without a version: ours, and said so
        (validator,) = [n for n in notes if n.startswith("validator: ")]
        assert validator.endswith(
            "has no version here (NVIDIA's chart takes its own appVersion); "
            "it runs our ghcr.io/gpu-operator/gpu-operator:v0.1.0"
        )


@pytest.mark.parametrize(
    ("key", "values_path", "version"),
    [
        ("toolkit", "toolkit", "1.7.2-ubi8"),
        ("driver.manager", "driver.manager", "v0.2.0-ubi8"),
        ("devicePlugin", "devicePlugin", "v0.10.0-ubi8"),
        ("gfd", "gfd", "v0.4.1"),
        ("gfd", "gfd", "v0.17.0"),
        ("migManager", "migManager", "v0.2.0-ubuntu20.04"),
        ("dcgmExporter", "dcgmExporter", "2.3.1-2.6.0-ubuntu20.04"),
        ("validator", "validator", "v1.9.0-ubi8"),
        ("validator", "validator", "v25.10.0"),
        ("nodeStatusExporter", "nodeStatusExporter", "v1.9.0-ubi8"),
        ("operator.initContainer", "operator.initContainer", "11.4.2-base-ubi8"),
    ],
)
def test_the_chart_follows_the_codes_table_for_a_bare_version_pin(
    key: str, values_path: str, version: str
) -> None:
    spec = parse_spec(
        the_policy(render("--set", f"{values_path}.version={version}"))["spec"], source="t"
    )
    entry = nvidia_image(key, version)
    given = section(spec, key)
    assert (given.repository, given.image, given.version) == (
        entry.repository,
        entry.image,
        version,
    )


def test_nvidias_image_with_our_tag_becomes_ours_and_says_so() -> None:
    objects = render(*upstream_values("values-v1.9.0.yaml"), "--set", "validator.version=v0.1.0")
    spec = parse_spec(the_policy(objects)["spec"], source="t")
    assert (spec.validator.repository, spec.validator.image, spec.validator.version) == (
        "ghcr.io/gpu-operator", "gpu-operator", "v0.1.0",
    )  # fmt: skip
    assert (
        "validator: nvcr.io/nvidia/cloud-native/gpu-operator-validator:v0.1.0 is NVIDIA's image "
        "with our tag, which does not exist; it runs our ghcr.io/gpu-operator/gpu-operator:v0.1.0"
    ) in the_policy(objects)["metadata"]["annotations"][NOTES_ANNOTATION]


def test_a_pin_of_our_own_release_keeps_our_image() -> None:
    spec = parse_spec(the_policy(render("--set", "toolkit.version=v0.1.0"))["spec"], source="t")
    assert (spec.toolkit.repository, spec.toolkit.image, spec.toolkit.version) == (
        "ghcr.io/gpu-operator", "gpu-operator", "v0.1.0",
    )  # fmt: skip


def test_nvidias_operator_repository_and_version_keep_ours_and_say_so() -> None:
    objects = render(
        "--set", "operator.repository=nvcr.io/nvidia", "--set", "operator.version=v25.10.0"
    )  # fmt: skip
    for obj in objects:
        for use in pod_images(obj) if obj["kind"] in ("Deployment", "DaemonSet", "Job") else ():
            assert use.image == "ghcr.io/gpu-operator/gpu-operator:v0.1.0"
    notes = the_policy(objects)["metadata"]["annotations"][NOTES_ANNOTATION]
    assert notes.startswith("operator.repository=nvcr.io/nvidia: NVIDIA's operator image")
    assert "operator.version=v25.10.0: not a release of gpu-operator" in notes


def test_a_mirror_of_our_image_is_followed_by_every_operand() -> None:
    objects = render("--set", "operator.repository=homelab.net/ghcr.io/gpu-operator")
    assert set(operator_environ(objects).values()) == {
        "homelab.net/ghcr.io/gpu-operator/gpu-operator:v0.1.0"
    }
    assert NOTES_ANNOTATION not in (the_policy(objects)["metadata"].get("annotations") or {})


def test_a_version_naming_another_image_is_refused_in_one_line() -> None:
    result = helm("template", "x", str(CHART), "--set", "toolkit.version=foo:1.2")
    assert result.returncode != 0
    assert (
        "toolkit.version=foo:1.2: a version can't hold ':'; set toolkit.image and "
        "toolkit.version apart (e.g. toolkit.version=1.2)"
    ) in result.stderr


def test_the_default_install_has_no_image_notes() -> None:
    objects = render()
    assert NOTES_ANNOTATION not in (the_policy(objects)["metadata"].get("annotations") or {})
