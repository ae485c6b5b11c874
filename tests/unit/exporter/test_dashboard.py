"""Dashboards get data: every query of dcgm-exporter's dashboard 12239 and of our shipped
dashboard names metrics the exporter serves, with the labels the query filters on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpu_operator.exporter.serving import Exporter
from gpu_operator.gpu import Nvml
from helpers.exporter import balanced, parse  # type: ignore[import-not-found]

DASHBOARD = Path(__file__).parents[3] / "deployments" / "grafana" / "gpu-operator-exporter.json"
# Dashboard 12239's panel queries (reference §1.9), each filtered by instance and gpu.
UPSTREAM_12239 = [
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:DCGM|gpu_operator)_[A-Za-z0-9_]+)\b", expr))


def served(make_exporter: Callable[..., tuple[Exporter, Nvml]], clock: Any) -> set[str]:
    names: set[str] = set()
    for spec in ("h200", "dgx-a100"):
        exporter, nvml = make_exporter(spec)
        if spec == "dgx-a100":
            balanced(nvml, range(2))
        exporter.xids.record(0, None, 13)
        exporter.step()
        clock.advance(30)
        exporter.step()  # GPM needs two samples
        body = exporter.body.decode()
        names |= {
            line.split("{")[0].split(" ")[0]
            for line in body.splitlines()
            if line and line[0] != "#"
        }
        assert all(
            'gpu="' in line for line in body.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP")
        )
    return names


def test_every_query_of_dashboard_12239_has_data_on_a_hopper_node(
    make_exporter: Callable[..., tuple[Exporter, Nvml]], clock: Any
) -> None:
    exporter, _ = make_exporter("h200")
    exporter.step()
    clock.advance(30)
    exporter.step()
    series = parse(exporter.body)
    for name in UPSTREAM_12239:
        assert series.get(name), name
        assert all("gpu" in labels for labels, _ in series[name])


def test_every_query_of_our_dashboard_names_a_served_metric(
    make_exporter: Callable[..., tuple[Exporter, Nvml]], clock: Any
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 16
    available = served(make_exporter, clock)
    wanted = set().union(*(metric_names(e) for e in exprs))
    assert wanted - available == set()
