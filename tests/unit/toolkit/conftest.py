"""Toolkit tests run on copies of real-world runtime config files in a temp dir."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.toolkit.settings import ToolkitSettings
from helpers.toolkit_fixtures import copy_config as copy_config
from helpers.toolkit_fixtures import toolkit_root as toolkit_root


@pytest.fixture
def containerd_settings(toolkit_root: Path) -> Callable[..., ToolkitSettings]:
    def make(config: Path, **overrides: object) -> ToolkitSettings:
        values: dict[str, object] = {
            "runtime": "containerd",
            "root": toolkit_root,
            "config": config,
            "restart_mode": "none",
            "runtime_version": "1.7.22",
        }
        values.update(overrides)
        return ToolkitSettings(**values)  # type: ignore[arg-type]

    return make


# --- the runtime shim (built from runtime_shim.c) on a node with a simulated GPU ----------------

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="session")
def shim_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shim, compiled as the image's build stage compiles it."""
    if CC is None:
        pytest.skip("no C compiler (cc) to build the runtime shim")
    from gpu_operator.toolkit.runtime_shim import build

    return build(tmp_path_factory.mktemp("shim") / "nvidia-container-runtime", cc=CC)
