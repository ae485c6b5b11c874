"""Telemetry of a simulated GPU: plausible, moving, and a pure function of (seed, GPU, time).

A GPU with processes is busy: utilisation wanders between 55 and 95 %, power, clocks and
temperatures follow it. An idle GPU sits at its idle power and clocks. Energy is the exact
integral of a smooth power curve, so it only ever grows. Given the same seed and clock, every
process reads the same numbers, which keeps metric tests stable.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from gpu_operator.gpu.fake.catalogue import ModelSpec

_BUCKET_S = 5.0
_POWER_PERIOD_S = 60.0


def _noise(seed: int, gpu: int, bucket: int, channel: str) -> float:
    return zlib.crc32(f"{seed}:{gpu}:{bucket}:{channel}".encode()) / 2**32


def _smooth(seed: int, gpu: int, t: float, channel: str) -> float:
    """A value in [0, 1) that changes continuously with ``t``."""
    bucket = math.floor(t / _BUCKET_S)
    frac = t / _BUCKET_S - bucket
    a = _noise(seed, gpu, bucket, channel)
    b = _noise(seed, gpu, bucket + 1, channel)
    return a + (b - a) * frac


@dataclass(frozen=True)
class GpuReadings:
    gpu_util: int
    memory_util: int
    encoder_util: int
    decoder_util: int
    power_mw: int
    energy_mj: int
    gpu_temp_c: int
    memory_temp_c: int
    sm_clock_mhz: int
    memory_clock_mhz: int
    nvlink_rx_kib: int
    nvlink_tx_kib: int
    pcie_tx_mib_s: float
    pcie_rx_mib_s: float


def readings(
    model: ModelSpec, seed: int, gpu: int, t: float, busy: bool, busy_seconds: float
) -> GpuReadings:
    """All counters of GPU ``gpu`` at ``t`` seconds since the simulated node booted, having
    been busy for ``busy_seconds`` of them (counters grow with busy time, so they never fall)."""
    wander = _smooth(seed, gpu, t, "util")
    util = round(55 + 40 * wander) if busy else 0
    mem_util = round(util * (0.35 + 0.3 * _smooth(seed, gpu, t, "mem"))) if busy else 0

    idle_mw = model.idle_power_w * 1000
    swing_mw = idle_mw * 0.1
    omega = 2 * math.pi / _POWER_PERIOD_S
    phase = _noise(seed, gpu, 0, "phase") * 2 * math.pi
    base_mw = idle_mw + swing_mw * (1 + math.sin(omega * t + phase)) / 2
    load_mw = (model.power_limit_w * 1000 - idle_mw) * util / 100 * 0.85
    # Energy integrates the smooth idle curve exactly (closed form); busy time adds the average
    # load of a busy GPU (util 75 %), so energy grows monotonically whatever processes do.
    avg_load_mw = (model.power_limit_w * 1000 - idle_mw) * 0.75 * 0.85
    energy_mj = (
        idle_mw * t
        + swing_mw / 2 * (t - (math.cos(omega * t + phase) - math.cos(phase)) / omega)
        + avg_load_mw * busy_seconds
    )  # mW x s = mJ
    power_mw = round(base_mw + load_mw)
    temp = 28 + round(47 * power_mw / (model.power_limit_w * 1000))
    sm_clock = (
        model.max_sm_clock_mhz - round(80 * _smooth(seed, gpu, t, "clk"))
        if busy
        else model.idle_sm_clock_mhz
    )
    nvlink_kib = 3_000_000 * busy_seconds
    return GpuReadings(
        gpu_util=util,
        memory_util=mem_util,
        encoder_util=0,
        decoder_util=round(util * 0.1) if busy else 0,
        power_mw=power_mw,
        energy_mj=round(energy_mj),
        gpu_temp_c=temp,
        memory_temp_c=temp + 4,
        sm_clock_mhz=sm_clock,
        memory_clock_mhz=model.memory_clock_mhz,
        nvlink_rx_kib=round(nvlink_kib),
        nvlink_tx_kib=round(nvlink_kib * 0.97),
        pcie_tx_mib_s=round(200 * util / 100 * (0.5 + wander), 3),
        pcie_rx_mib_s=round(350 * util / 100 * (0.5 + wander), 3),
    )
