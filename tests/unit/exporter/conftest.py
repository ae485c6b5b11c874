"""An Exporter over a fresh simulated node, on the test's frozen clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, Collectors, load_collectors
from gpu_operator.exporter.pods import PodMeta
from gpu_operator.exporter.serving import Exporter, PodSource
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.gpu import Nvml


@pytest.fixture
def make_exporter(
    open_sim: Callable[..., Nvml], clock: Callable[[], float]
) -> Callable[..., tuple[Exporter, Nvml]]:
    def _make(
        spec: str,
        *,
        collectors: Collectors | None = None,
        pod_source: PodSource | None = None,
        pod_meta: PodMeta | None = None,
        **settings: object,
    ) -> tuple[Exporter, Nvml]:
        nvml = open_sim(spec)
        base = replace(ExporterSettings(hostname="node-a"), **settings)  # type: ignore[arg-type]
        table = collectors or load_collectors(
            DEFAULT_COLLECTORS.read_text(), source=str(DEFAULT_COLLECTORS)
        )
        exporter = Exporter(
            nvml, base, table, pod_source=pod_source, pod_meta=pod_meta, clock=clock
        )
        return exporter, nvml

    return _make
