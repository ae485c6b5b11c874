"""The driver image is computed once: ``render.driver.pools`` gives each pool its image, the
rendered driver DaemonSets run exactly those images, and ``preflight`` checks the same list —
for one OS, mixed OSes and precompiled drivers (NVIDIADriver CRs: test_nvidiadriver_render)."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.driver.preflight import preflight
from gpu_operator.driver.registry import Exists, TagCheck
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.render.driver import pools
from helpers.gpu_nodes import gpu_node as node

MIRROR = {"repository": "homelab.net/nvcr.io/nvidia", "image": "driver", "version": "450.156.00"}


def driver_images(spec_data: dict[str, Any], nodes: list[NodeFacts]) -> dict[str, str]:
    spec = parse_spec(spec_data, source="test")
    rendered = desired_state(spec, nodes, policy_uid="uid-1").objects()
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in rendered
        if o["kind"] == "DaemonSet" and o["metadata"]["name"].startswith("nvidia-driver-daemonset")
    }


@pytest.mark.parametrize(
    ("driver", "nodes", "expected"),
    [
        pytest.param(
            MIRROR,
            [node("a", "rocky", "8.5")],
            {"nvidia-driver-daemonset": "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"},
            id="one OS: upstream's single DaemonSet with the OS tag",
        ),
        pytest.param(
            MIRROR,
            [node("a", "rocky", "8.5"), node("b", "ubuntu", "22.04")],
            {
                "nvidia-driver-daemonset-rocky8": (
                    "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
                ),
                "nvidia-driver-daemonset-ubuntu22.04": (
                    "homelab.net/nvcr.io/nvidia/driver:450.156.00-ubuntu22.04"
                ),
            },
            id="two OSes: one pool each",
        ),
        pytest.param(
            {**MIRROR, "version": "535", "usePrecompiled": True},
            [node("a", "ubuntu", "22.04")],
            {
                "nvidia-driver-daemonset-5.15.0-69-generic-ubuntu22.04": (
                    "homelab.net/nvcr.io/nvidia/driver:535-5.15.0-69-generic-ubuntu22.04"
                )
            },
            id="precompiled: branch, kernel and OS",
        ),
    ],
)
def test_the_rendered_driver_images_are_the_pools_images_and_preflight_checks_them(
    driver: dict[str, Any], nodes: list[NodeFacts], expected: dict[str, str]
) -> None:
    spec = parse_spec({"driver": driver}, source="test")
    planned = pools(spec, nodes, {})
    assert {p.name: p.image for p in planned} == expected
    assert driver_images({"driver": driver}, nodes) == expected
    asked: list[str] = []

    def check(image: str) -> TagCheck:
        asked.append(image)
        return TagCheck(image, Exists.YES)

    reports = preflight(planned, check)
    assert [r.pool.image for r in reports] == [p.image for p in planned]
    assert asked == sorted(set(expected.values()))


def test_a_disabled_driver_has_no_pools() -> None:
    spec = parse_spec({"driver": {"enabled": False}}, source="test")
    assert pools(spec, [node("a", "rocky", "8.5")], {}) == ()
