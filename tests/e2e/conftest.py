"""One simulated cluster for the end-to-end story: two Rocky 8.5 DGX A100 nodes, the chart
installed with the seed's values, both nodes labelled all-balanced. Module-scoped: the tests of
a module walk one story in order and each leaves the cluster settled for the next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.demo import NAMESPACE, SEED_VALUES
from gpu_operator.sandbox.nodes import parse_nodes
from gpu_operator.sandbox.podspec import ImageCatalogue
from helpers.story import MISSING_DRIVER, NODES, Story


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
