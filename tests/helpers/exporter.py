"""Helpers for exporter tests: parsing the exposition text, extra CSV rows, MIG layouts."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, Collectors, load_collectors
from gpu_operator.gpu import Nvml

Series = dict[str, list[tuple[dict[str, str], float]]]

CSV_1X = """\
# dcgm-exporter 1.x names
dcgm_sm_clock,     gauge, SM clock (MHz).
dcgm_gpu_temp,    gauge, GPU temperature (C).
dcgm_pcie_tx_throughput,  counter, PCIe TX (KB).
dcgm_power_usage,              gauge, Power draw (W).
dcgm_fb_used, gauge, Framebuffer used (MiB).
dcgm_fi_prof_gr_engine_active,   gauge, Graphics engine active ratio.
"""
"""A 1.x-compatibility collectors file: dcgm-exporter 1.x names (``dcgm_*``), kind, help."""


def parse(body: bytes) -> Series:
    """Family → [(labels, value)], through prometheus_client's own text parser (which names
    a counter family without its ``_total`` suffix)."""
    out: Series = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(family.name, []).append((dict(sample.labels), sample.value))
    return out


def collectors_with(*extra_rows: str) -> Collectors:
    text = DEFAULT_COLLECTORS.read_text() + "\n".join(extra_rows) + "\n"
    return load_collectors(text, source="test.csv")


def balanced(nvml: Nvml, gpus: range) -> None:
    """all-balanced by hand on A100-40GB GPUs: 3g at 4, 2g at 2, 1g at 0 and 1."""
    for index in gpus:
        nvml.set_mig_mode(index, True)
    nvml.reset_gpus(list(gpus))
    for index in gpus:
        ids = {p.name: p.id for p in nvml.gi_profiles(index)}
        for name, start in (("3g.20gb", 4), ("2g.10gb", 2), ("1g.5gb", 0), ("1g.5gb", 1)):
            gi = nvml.create_gpu_instance(index, ids[name], start)
            nvml.create_compute_instance(index, gi.id)


def get(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    """GET ``url``: the status and body, an HTTP error status included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
