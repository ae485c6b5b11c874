"""One simulated cluster for the end-to-end story: two Rocky 8.5 DGX A100 nodes, the chart
installed with the seed's values, both nodes labelled all-balanced. Module-scoped: the tests of
a module walk one story in order and each leaves the cluster settled for the next."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.demo import BALANCED, NAMESPACE, SEED_VALUES, story_blockers
from gpu_operator.sandbox.nodes import parse_nodes, state_file
from gpu_operator.sandbox.podspec import ImageCatalogue
from gpu_operator.sandbox.rest import Rest

NODES = ["gpu-node-1", "gpu-node-2"]
MISSING_DRIVER = "999.0.0"


class Story:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.rest = Rest(sandbox.server.url)

    def wait(self, what: str, check: Callable[[], list[str]], timeout_s: float) -> float:
        """Poll ``check`` until it has nothing left; fail naming what is left."""
        start = time.monotonic()
        left = check()
        while left:
            if time.monotonic() - start > timeout_s:
                pytest.fail(f"{what}: still waiting after {timeout_s:g}s for: {left[:5]}")
            time.sleep(0.25)
            left = check()
        return time.monotonic() - start

    def settled(self, layout: dict[str, int] = BALANCED, nodes: list[str] = NODES) -> list[str]:
        return story_blockers(self.rest, nodes, layout)

    def sim(self, node: str, *args: str) -> None:
        """A fault on the node's simulated GPUs, through the real CLI."""
        state = state_file(self.sandbox.base_dir / node, "dgx-a100")
        gpu_operator = str(Path(sys.executable).parent / "gpu-operator")
        subprocess.run(
            [gpu_operator, "--sim", str(state), "sim", *args],
            check=True,
            timeout=30,
            capture_output=True,
        )

    def allocatable(self, node: str) -> dict[str, int]:
        obj = self.rest.get("nodes", node) or {}
        return {
            k: int(v)
            for k, v in obj["status"]["allocatable"].items()
            if k.startswith("nvidia.com/")
        }

    def label(self, node: str, key: str, value: str | None) -> None:
        self.rest.patch("nodes", node, {"metadata": {"labels": {key: value}}})


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    base = Path(tmp_path_factory.mktemp("sbx", numbered=True))
    sandbox = Sandbox(
        parse_nodes("dgx-a100:2", "rocky:8.5"),
        base,
        catalogue=ImageCatalogue(missing=(f"*/driver:{MISSING_DRIVER}-*",)),
        driver_delay_s=1.0,
    )
    sandbox.start()
    try:
        sandbox.install(SEED_VALUES, NAMESPACE)
        run = Story(sandbox)
        for node in NODES:
            run.label(node, "nvidia.com/mig.config", "all-balanced")
        yield run
        run.rest.close()
    finally:
        sandbox.stop()


TIME_SLICING_CONFIG = "time-slicing-config"
TIME_SLICING_CONFIGS = {
    # node 2 has no label: the `named` fallback gives it this one
    "default": "version: v1\nflags:\n  migStrategy: single\n",
    "ts-4": (
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
        "    - name: nvidia.com/gpu\n      replicas: 4\n"
    ),
}


@pytest.fixture(scope="module")
def sliced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """Two DGX A100 nodes without MIG, the plugin ConfigMap of TIME_SLICING_CONFIGS installed
    with the chart, node 1 labelled nvidia.com/device-plugin.config=ts-4."""
    base = Path(tmp_path_factory.mktemp("sbx", numbered=True))
    sandbox = Sandbox(parse_nodes("dgx-a100:2", "rocky:8.5"), base, driver_delay_s=1.0)
    sandbox.start()
    run = Story(sandbox)
    try:
        run.label(NODES[0], "nvidia.com/device-plugin.config", "ts-4")
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TIME_SLICING_CONFIG, "namespace": NAMESPACE},
            "data": TIME_SLICING_CONFIGS,
        }
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        run.rest.create("namespaces", namespace)
        run.rest.create("configmaps", body, namespace=NAMESPACE)
        sandbox.install(
            (
                "operator.defaultRuntime=containerd",
                "mig.strategy=single",
                f"devicePlugin.config.name={TIME_SLICING_CONFIG}",
            ),
            NAMESPACE,
        )
        yield run
    finally:
        run.rest.close()
        sandbox.stop()
