"""The operator's metrics carry upstream's gpu_operator_* names and parse as Prometheus text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gpu_operator.operator.metrics import OperatorMetrics


def test_the_metrics_use_upstream_names_and_parse_as_prometheus_text() -> None:
    metrics = OperatorMetrics(gpu_nodes_total=3, reconciliation_status=1, reconciliation_total=7)
    values = {
        s.name: s.value for f in text_string_to_metric_families(metrics.render()) for s in f.samples
    }
    assert values["gpu_operator_gpu_nodes_total"] == 3
    assert values["gpu_operator_reconciliation_status"] == 1
    assert values["gpu_operator_reconciliation_total"] == 7
    for name in (
        "reconciliation_failed_total",
        "reconciliation_has_nfd_labels",
        "reconciliation_last_success_ts_seconds",
        "driver_auto_upgrade_enabled",
    ):
        assert f"gpu_operator_{name}" in values
