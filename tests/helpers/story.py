"""The e2e tier's sandbox run: a started ``Sandbox`` with a REST view and the waits, labels and
simulated faults the story tests drive it with (the fixtures are in tests/e2e/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.demo import BALANCED, story_blockers
from gpu_operator.sandbox.nodes import state_file
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
