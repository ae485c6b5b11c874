"""The toolkit's install directory and copies of real-world runtime config files, as fixtures
both tiers' toolkit conftests import (tests/unit/toolkit, tests/cli/toolkit)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

CONFIGS = Path(__file__).parents[1] / "data" / "runtime-configs"


@pytest.fixture
def toolkit_root(tmp_path: Path) -> Path:
    """A toolkit install dir with nvidia-container-runtime in place (so handlers use it)."""
    root = tmp_path / "usr-local-nvidia"
    (root / "toolkit").mkdir(parents=True)
    for name in ("", ".cdi", ".legacy"):
        binary = root / "toolkit" / f"nvidia-container-runtime{name}"
        binary.write_text('#!/bin/sh\nexec runc "$@"\n')
        binary.chmod(0o755)
    return root


@pytest.fixture
def copy_config(tmp_path: Path) -> Callable[[str], Path]:
    """``copy_config("name")`` copies tests/data/runtime-configs/name under ``tmp_path/etc``."""

    def copy(name: str) -> Path:
        target = tmp_path / "etc" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONFIGS / name, target)
        return target

    return copy
