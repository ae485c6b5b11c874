"""A light, dcgm-exporter compatible Prometheus exporter over the NVML facade.

Collectors fill an immutable snapshot on a background timer (``sampling``); the HTTP handler
only serves the snapshot's pre-rendered text (``rendering``, ``serving``): no NVML, kubelet or
API call happens on a scrape.
"""
