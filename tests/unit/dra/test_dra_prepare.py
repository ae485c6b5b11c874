"""Prepare and unprepare against an in-process claim source (the API shell is tested against
the emulator elsewhere): the CDI spec holds exactly the claim's GPUs and validates against the
CDI schema, the answer names one CDI id per device, repeating gives the same answer, a new
Preparer over the same checkpoint (a restart) still knows the claim, and every refusal is one
line for that claim."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml

from gpu_operator.dra.cdi import claim_spec
from gpu_operator.dra.checkpoint import load
from gpu_operator.dra.claims import ClaimRef
from gpu_operator.dra.devices import NodeGpus
from gpu_operator.dra.prepare import Preparer
from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.toolkit.cdi_generate import CdiOptions
from gpu_operator.toolkit.driver_tree import discover
from helpers.dra_driver import Claims, claim, make_driver_root

SCHEMA = json.loads((Path(__file__).parents[2] / "data" / "cdi-schema.json").read_text())
NODE = "gpu-node-1"
UID = "8e3c-4f00-aa11"


@pytest.fixture
def world(
    tmp_path: Path, node_gpus: Callable[[str], NodeGpus]
) -> tuple[Callable[[], Preparer], Claims, NodeGpus]:
    node = node_gpus("hgx-h100")
    version = node.system.driver_version
    tree = discover(make_driver_root(tmp_path / "driver", version), version)
    options = CdiOptions(hook_path="/usr/bin/nvidia-cdi-hook")
    claims = Claims()

    def spec(uid: str, gpus: Sequence[GpuInfo]) -> dict[str, Any]:
        return claim_spec(uid, gpus, tree, options)

    def make() -> Preparer:
        return Preparer(
            NODE,
            node.by_name(),
            cdi_root=tmp_path / "cdi",
            checkpoint_path=tmp_path / "plugins/gpu.nvidia.com/checkpoint.json",
            claims=claims,
            spec=spec,
        )

    return make, claims, node


REF = ClaimRef("ml", "train", UID)


def test_prepare_writes_a_spec_for_exactly_the_claims_gpus_and_returns_their_cdi_ids(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus], tmp_path: Path
) -> None:
    make, claims, node = world
    claims.add(
        claim(
            [
                ("gpus", "gpu.nvidia.com", NODE, "gpu-2"),
                ("gpus", "gpu.nvidia.com", NODE, "gpu-5"),
                ("nic", "net.example.com", NODE, "eth0"),  # another driver's: not ours
            ]
        )
    )
    preparer = make()
    devices, error = preparer.prepare(REF)
    assert error == ""
    assert [(d.request_names, d.pool, d.device, d.cdi_ids) for d in devices] == [
        (("gpus",), NODE, "gpu-2", (f"k8s.gpu.nvidia.com/claim={UID}-gpu-2",)),
        (("gpus",), NODE, "gpu-5", (f"k8s.gpu.nvidia.com/claim={UID}-gpu-5",)),
    ]
    path = tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{UID}.yaml"
    assert sorted(p.name for p in (tmp_path / "cdi").iterdir()) == [path.name]
    spec = yaml.safe_load(path.read_text())
    jsonschema.validate(spec, SCHEMA)
    assert spec["kind"] == "k8s.gpu.nvidia.com/claim"
    assert {d["name"]: d["containerEdits"]["deviceNodes"] for d in spec["devices"]} == {
        f"{UID}-gpu-2": [{"path": "/dev/nvidia2"}],
        f"{UID}-gpu-5": [{"path": "/dev/nvidia5"}],
    }
    common = spec["containerEdits"]
    assert "NVIDIA_VISIBLE_DEVICES=void" in common["env"]
    assert {"path": "/dev/nvidiactl"} in common["deviceNodes"]
    mounts = {m["containerPath"] for m in common["mounts"]}
    assert f"/usr/lib/x86_64-linux-gnu/libcuda.so.{node.system.driver_version}" in mounts


def test_prepare_twice_gives_the_same_answer_without_asking_the_api_again(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus], tmp_path: Path
) -> None:
    make, claims, _ = world
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-0")]))
    preparer = make()
    first = preparer.prepare(REF)
    spec = tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{UID}.yaml"
    written = spec.read_text()
    assert preparer.prepare(REF) == first
    assert claims.calls == 1
    assert spec.read_text() == written
    spec.unlink()  # removed behind the driver's back: prepared again, same spec
    assert preparer.prepare(REF) == first
    assert spec.read_text() == written


def test_a_restarted_plugin_knows_its_prepared_claims_from_the_checkpoint(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus], tmp_path: Path
) -> None:
    make, claims, _ = world
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-7")]))
    first = make().prepare(REF)
    checkpoint = load(tmp_path / "plugins/gpu.nvidia.com/checkpoint.json")
    assert checkpoint[UID].name == "train"
    assert checkpoint[UID].namespace == "ml"
    del claims.objects[("ml", "train")]  # the claim is gone from the API meanwhile
    restarted = make()
    assert restarted.prepare(REF) == first
    assert restarted.unprepare(REF) == ""
    assert list((tmp_path / "cdi").iterdir()) == []
    assert load(tmp_path / "plugins/gpu.nvidia.com/checkpoint.json") == {}
    assert make().prepared() == {}


def test_unprepare_of_an_unknown_claim_succeeds_and_removes_nothing_else(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus], tmp_path: Path
) -> None:
    make, claims, _ = world
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-1")]))
    preparer = make()
    preparer.prepare(REF)
    assert preparer.unprepare(ClaimRef("ml", "other", "0000")) == ""
    assert len(list((tmp_path / "cdi").iterdir())) == 1
    assert preparer.unprepare(REF) == ""
    assert preparer.unprepare(REF) == ""


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, "ResourceClaim ml/train: not found"),
        (
            claim([("gpus", "gpu.nvidia.com", NODE, "gpu-0")], uid="other-uid"),
            f"ResourceClaim ml/train: has UID other-uid, the kubelet asked for {UID} "
            "(deleted and created again?)",
        ),
        (
            {**claim([]), "status": {}},
            "ResourceClaim ml/train: not allocated",
        ),
        (
            claim([("nic", "net.example.com", NODE, "eth0")]),
            "ResourceClaim ml/train: no device of driver gpu.nvidia.com allocated",
        ),
        (
            claim([("gpus", "gpu.nvidia.com", "gpu-node-2", "gpu-0")]),
            "ResourceClaim ml/train: device gpu-node-2/gpu-0 is not on this node (gpu-node-1)",
        ),
        (
            claim([("gpus", "gpu.nvidia.com", NODE, "gpu-8")]),
            "ResourceClaim ml/train: device gpu-8 is not on this node (gpu-node-1 has gpu-0, "
            "gpu-1, gpu-2, gpu-3, gpu-4, gpu-5, gpu-6, gpu-7)",
        ),
    ],
    ids=["not-found", "uid-mismatch", "not-allocated", "other-driver", "other-node", "no-device"],
)
def test_a_claim_that_cannot_be_prepared_is_one_line_and_writes_nothing(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus],
    tmp_path: Path,
    stored: dict[str, Any] | None,
    expected: str,
) -> None:
    make, claims, _ = world
    if stored is not None:
        claims.add(stored)
    devices, error = make().prepare(REF)
    assert (devices, error) == ((), expected)
    assert not (tmp_path / "cdi").exists() or list((tmp_path / "cdi").iterdir()) == []
    assert not (tmp_path / "plugins/gpu.nvidia.com/checkpoint.json").exists()


def test_an_api_failure_is_the_claims_error_and_a_retry_succeeds(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus],
) -> None:
    make, claims, _ = world
    claims.add(claim([("gpus", "gpu.nvidia.com", NODE, "gpu-4")]))
    preparer = make()
    claims.failing = True
    assert preparer.prepare(REF) == (
        (),
        "ResourceClaim ml/train: get ResourceClaim ml/train: connection refused",
    )
    claims.failing = False
    devices, error = preparer.prepare(REF)
    assert error == ""
    assert [d.device for d in devices] == ["gpu-4"]


def test_a_broken_checkpoint_is_refused_naming_the_file(
    world: tuple[Callable[[], Preparer], Claims, NodeGpus], tmp_path: Path
) -> None:
    make, _, _ = world
    path = tmp_path / "plugins/gpu.nvidia.com/checkpoint.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"version": "v9", "claims": {}}')
    with pytest.raises(ConfigError, match=f"^{path}: not a DRA driver checkpoint: version 'v9'"):
        make()
    assert path.read_text() == '{"version": "v9", "claims": {}}'
