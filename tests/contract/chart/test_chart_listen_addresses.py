"""No container of the chart, as the real helm renders it, listens on every interface: each one
listens on its pod's own address in the sandbox (the operator's rendered operands: tests/unit/
sandbox/test_network.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox import chart
from helpers.pod_listening import assert_listens_on_the_pods_address, workload_containers


def chart_containers() -> list[pytest.ParameterSet]:
    try:
        objects = chart.render(["mig.strategy=mixed"])
    except ConfigError as error:  # no helm here: one skipped case that says so
        return [pytest.param({}, {}, marks=pytest.mark.skip(reason=str(error)), id="no-helm")]
    return workload_containers(objects)


@pytest.mark.parametrize(("template", "container"), chart_containers())
def test_no_container_the_chart_renders_listens_on_every_interface(
    template: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> None:
    assert_listens_on_the_pods_address(template, container, tmp_path)
