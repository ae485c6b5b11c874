"""Render one sampling pass as Prometheus text, the way dcgm-exporter prints it.

Families in the counters file's order, ``# HELP`` then ``# TYPE`` then the series; labels in
upstream order (``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, then
``GPU_I_PROFILE``/``GPU_I_ID`` for GPU instances, ``Hostname``, then the label rows and pod
labels sorted, then the XID attributes); integers with ``%d``, doubles with ``%f``. A value
NVML doesn't support is omitted, never printed as a sentinel. Our own families
(``gpu_operator_exporter_*``) follow the upstream ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpu_operator.exporter.collectors_csv import Collectors
from gpu_operator.exporter.fields import (
    CLOCK_EVENT_BITS,
    CLOCK_EVENTS_COUNT,
    FIELDS,
    XID_COUNT,
    Kind,
    OnMig,
)
from gpu_operator.exporter.pods import PodRef
from gpu_operator.exporter.readings import Entity, Reading
from gpu_operator.exporter.sampling import Pass
from gpu_operator.exporter.xids import XidView, xid_name

OWN = "gpu_operator_exporter"


@dataclass(frozen=True)
class RenderOptions:
    hostname: str | None
    """``None`` drops the ``Hostname`` label (``--no-hostname``)."""
    gpu_id_type: str = "uid"
    replace_blanks_in_model_name: bool = False
    xid_window_ms: int = 300000
    clock_events_window_ms: int = 300000
    pod_uid: bool = False
    """``--kubernetes-enable-pod-uid``: ``pod_uid`` on a pod's series."""
    pod_labels: bool = False
    """``--kubernetes-enable-pod-labels``: the pod's (sanitised) labels on its series."""
    old_namespace: bool = False
    """``-o``: dcgm-exporter 1.x label names (``uuid``, ``pod_name``, ``pod_namespace``,
    ``container_name``)."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


class Renderer:
    def __init__(self, collectors: Collectors, options: RenderOptions):
        self._collectors = collectors
        self._options = options

    def _entity_labels(self, entity: Entity) -> list[tuple[str, str]]:
        model = entity.model_name
        if self._options.replace_blanks_in_model_name:
            model = model.replace(" ", "-")
        pairs = [
            ("gpu", str(entity.gpu)),
            ("uuid" if self._options.old_namespace else "UUID", entity.uuid),
            ("pci_bus_id", entity.pci_bus_id),
            ("device", entity.device),
            ("modelName", model),
        ]
        if entity.gi_id is not None:
            pairs += [("GPU_I_PROFILE", entity.gi_profile or ""), ("GPU_I_ID", str(entity.gi_id))]
        if self._options.hostname is not None:
            pairs.append(("Hostname", self._options.hostname))
        return pairs

    def _extra(self, reading: Reading, pods: Mapping[str, PodRef]) -> list[tuple[str, str]]:
        extra: dict[str, str] = {}
        for row in self._collectors.labels:
            value = FIELDS[row.field].read(reading)
            if value is not None:
                extra[row.name] = str(value)
        entity = reading.entity
        key = entity.pod_key
        if entity.gi_id is None and self._options.gpu_id_type == "device-name":
            key = entity.device
        pod = pods.get(key)
        if pod is not None:
            names = ("pod_name", "pod_namespace", "container_name")
            if not self._options.old_namespace:
                names = ("pod", "namespace", "container")
            extra.update(zip(names, (pod.pod, pod.namespace, pod.container), strict=True))
            if self._options.pod_uid and pod.uid:
                extra["pod_uid"] = pod.uid
            if self._options.pod_labels:
                extra.update(pod.labels)
        return sorted(extra.items())

    def render(
        self,
        sampled: Pass,
        xids: XidView,
        clock_events: Mapping[tuple[int, str], int],
        pods: Mapping[str, PodRef],
    ) -> bytes:
        lines: list[str] = []
        prefix = {
            r.entity: _labels(self._entity_labels(r.entity) + self._extra(r, pods))
            for r in sampled.readings
        }
        for row in self._collectors.metrics:
            series: list[str] = []
            if row.field == XID_COUNT:
                series = self._xid_window(sampled, xids, prefix)
            elif row.field == CLOCK_EVENTS_COUNT:
                series = self._clock_events(sampled, clock_events, prefix)
            else:
                spec = FIELDS[row.field]
                for reading in sampled.readings:
                    if reading.entity.gi_id is not None and spec.on_mig is OnMig.NONE:
                        continue
                    value = spec.read(reading)
                    if value is None:
                        continue
                    labels = prefix[reading.entity]
                    if row.field == "DCGM_FI_DEV_XID_ERRORS":
                        code = int(value)
                        labels += f',err_code="{code}",err_msg="{_escape(xid_name(code))}"'
                    text = f"{value:f}" if spec.kind is Kind.DOUBLE else f"{int(value)}"
                    series.append(f"{row.name}{{{labels}}} {text}")
            if series:
                lines.append(f"# HELP {row.name} {row.help}")
                lines.append(f"# TYPE {row.name} {row.prom_type}")
                lines.extend(series)
        lines.extend(self._own_families(sampled, xids))
        return ("\n".join(lines) + "\n").encode()

    def _xid_window(self, sampled: Pass, xids: XidView, prefix: Mapping[Entity, str]) -> list[str]:
        out = []
        for reading in sampled.readings:
            key = (reading.entity.gpu, reading.entity.gi_id)
            for (entity_key, code), count in sorted(xids.window.items()):
                if entity_key == key:
                    out.append(
                        f'{XID_COUNT}{{{prefix[reading.entity]},window_size_in_ms="'
                        f'{self._options.xid_window_ms}",xid="{code}"}} {count}'
                    )
        return out

    def _clock_events(
        self,
        sampled: Pass,
        clock_events: Mapping[tuple[int, str], int],
        prefix: Mapping[Entity, str],
    ) -> list[str]:
        out = []
        for reading in sampled.readings:
            for reason in CLOCK_EVENT_BITS.values():
                count = clock_events.get((reading.entity.gpu, reason))
                if count:
                    out.append(
                        f'{CLOCK_EVENTS_COUNT}{{{prefix[reading.entity]},clock_event="{reason}",'
                        f'window_size_in_ms="{self._options.clock_events_window_ms}"}} {count}'
                    )
        return out

    def _own_families(self, sampled: Pass, xids: XidView) -> list[str]:
        lines = [
            f"# HELP {OWN}_gpu_health 1 while the GPU answers NVML, 0 once it failed or was lost.",
            f"# TYPE {OWN}_gpu_health gauge",
        ]
        for h in sampled.health:
            labels = _labels(self._entity_labels(h.entity))
            lines.append(f"{OWN}_gpu_health{{{labels}}} {1 if h.healthy else 0}")
        totals = sorted(xids.total.items())
        if totals:
            lines.append(
                f"# HELP {OWN}_xid_errors_total XID errors since the exporter started, per code."
            )
            lines.append(f"# TYPE {OWN}_xid_errors_total counter")
            entities: dict[tuple[int, int | None], Entity] = {
                (h.entity.gpu, None): h.entity for h in sampled.health
            }
            entities.update({(r.entity.gpu, r.entity.gi_id): r.entity for r in sampled.readings})
            for (key, code), count in totals:
                entity = entities.get(key)
                if entity is None:  # an instance destroyed since: report it on its GPU
                    parent = entities.get((key[0], None))
                    if parent is None:
                        continue
                    entity = Entity(
                        parent.gpu, parent.uuid, parent.pci_bus_id, parent.model_name, "", key[1]
                    )
                labels = _labels(self._entity_labels(entity))
                lines.append(f'{OWN}_xid_errors_total{{{labels},xid="{code}"}} {count}')
        lines += [
            f"# HELP {OWN}_sample_duration_seconds Time the last sampling pass took.",
            f"# TYPE {OWN}_sample_duration_seconds gauge",
            f"{OWN}_sample_duration_seconds {sampled.duration_s:f}",
            f"# HELP {OWN}_sample_errors Errors in the last sampling pass (a failed or lost GPU).",
            f"# TYPE {OWN}_sample_errors gauge",
            f"{OWN}_sample_errors {sampled.errors}",
        ]
        return lines
