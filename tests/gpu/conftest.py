"""Tests on a real NVIDIA GPU: read only. Skipped where no driver is loaded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpu_operator.errors import NoDriverError
from gpu_operator.gpu import HardwareSettings, Nvml


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gpu/" in str(item.fspath):
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="module")
def real_nvml() -> Iterator[Nvml]:
    try:
        nvml = Nvml.open(HardwareSettings(sim=None))
    except NoDriverError as error:
        pytest.skip(f"no real GPU here: {error}")
    with nvml:
        yield nvml
