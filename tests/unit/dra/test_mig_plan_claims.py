"""``gpu-operator mig plan --from-claims``: the MIG demand of pending ResourceClaims (requests
for DeviceClass ``mig.nvidia.com`` with a profile selector) read from the API server emulator,
and the layout that would serve it; and the pure reading of claims (``dra.mig_claims``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from typer.testing import CliRunner

from gpu_operator.commands.mig import app
from gpu_operator.dra.mig_claims import claim_demand
from gpu_operator.kube.objects import create_namespaced
from gpu_operator.sandbox.apiserver import ServerThread

SELECT = "device.attributes['gpu.nvidia.com'].profile == '{}'"


def request(name: str, profile: str | None, count: int = 1, **extra: Any) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": "mig.nvidia.com", **extra}
    if profile is not None:
        exactly["selectors"] = [{"cel": {"expression": SELECT.format(profile)}}]
    if count != 1:
        exactly |= {"allocationMode": "ExactCount", "count": count}
    return {"name": name, "exactly": exactly}


def claim(
    name: str, *requests: dict[str, Any], namespace: str = "default", allocated: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"devices": {"requests": list(requests)}},
    }
    if allocated:
        body["status"] = {"allocation": {"devices": {"results": []}}}
    return body


def test_pending_mig_requests_with_a_profile_selector_make_the_demand() -> None:
    found = claim_demand(
        [
            claim("train", request("a", "3g.40gb"), request("b", "1g.10gb", count=2)),
            claim("done", request("a", "3g.40gb"), allocated=True),
            claim(
                "gpu",
                {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com"}},
            ),
            claim("any", request("a", None)),
            claim("all", request("a", "1g.10gb", allocationMode="All")),
            claim(
                "flat",
                {
                    "name": "a",
                    "deviceClassName": "mig.nvidia.com",
                    "selectors": [
                        {
                            "cel": {
                                "expression": 'device.attributes["gpu.nvidia.com"]["profile"] '
                                '== "2g.20gb"'
                            }
                        }
                    ],
                },
            ),
        ]
    )
    assert found.demand == {"3g.40gb": 1, "1g.10gb": 2, "2g.20gb": 1}
    assert found.claims == ["default/train (2×1g.10gb, 3g.40gb)", "default/flat (2g.20gb)"]
    assert found.skipped[0].startswith("default/any request a: no profile selector")
    assert found.skipped[1] == "default/all request a: allocationMode All is not planned"
    assert len(found.skipped) == 2


@pytest.fixture
def kubeconfig(tmp_path: Path, server_thread: ServerThread, client: Client) -> Path:
    client.create(Namespace(metadata=ObjectMeta(name="prod")))
    for body in (
        claim("train", request("a", "3g.40gb"), request("b", "1g.10gb", count=3)),
        claim("serve", request("a", "3g.40gb"), namespace="prod"),
        claim("old", request("a", "7g.80gb")),
    ):
        create_namespaced(client, "resource.k8s.io/v1", "ResourceClaim", "resourceclaims", body)
    # "old" got its device: the scheduler wrote its allocation (status subresource).
    resource = create_namespaced_resource(
        "resource.k8s.io", "v1", "ResourceClaim", "resourceclaims"
    )
    old = client.get(resource, "old", namespace="default")
    old["status"] = {"allocation": {"devices": {"results": []}}}
    client.replace(resource.Status.from_dict(dict(old)))
    return server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")


def plan(kubeconfig: Path, tmp_path: Path, *args: str, gpus: str = "h100") -> Any:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(f"gpu-node-1: {gpus}\n")
    return CliRunner().invoke(
        app,
        ["plan", "--nodes", str(nodes), "--kubeconfig", str(kubeconfig), "--from-claims", *args],
    )


def test_plan_from_the_pending_claims_of_a_namespace(kubeconfig: Path, tmp_path: Path) -> None:
    result = plan(kubeconfig, tmp_path, "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["claims"] == ["default/train (3×1g.10gb, 3g.40gb)"]
    assert data["satisfied"] is True
    ((entry,),) = data["customConfig"]["mig-configs"].values()
    assert entry["mig-enabled"] is True
    # What the claims ask for fits in the layout (the planner proposes a maximal one).
    assert entry["mig-devices"]["3g.40gb"] >= 1
    assert entry["mig-devices"]["1g.10gb"] >= 3


def test_plan_from_all_namespaces_adds_the_demand_given(kubeconfig: Path, tmp_path: Path) -> None:
    result = plan(kubeconfig, tmp_path, "-A", "--demand", "2g.20gb=1", gpus="h100x2")
    assert result.exit_code == 0, result.output
    assert (
        "# pending ResourceClaims in all namespaces: default/train (3×1g.10gb, 3g.40gb), "
        "prod/serve (3g.40gb)" in result.stdout
    )
    assert "2×3g.40gb" in result.stdout
    assert "2g.20gb" in result.stdout


def test_no_pending_mig_claim_means_nothing_to_plan(kubeconfig: Path, tmp_path: Path) -> None:
    result = plan(kubeconfig, tmp_path, "-n", "empty")
    assert result.exit_code == 0, result.output
    assert "none for mig.nvidia.com" in result.stdout
    assert "nothing to plan" in result.stdout


def test_namespace_without_from_claims_is_one_clear_error(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("gpu-node-1: h100\n")
    result = CliRunner().invoke(app, ["plan", "--nodes", str(nodes), "--demand", "1g.10gb=1", "-A"])
    assert result.exit_code != 0
    assert "go with --from-claims" in str(result.exception)
