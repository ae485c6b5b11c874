"""The exporter on a real GPU (read only): every default family the card supports is served,
with upstream labels, and the GPM profiling families come from NVML on Hopper and newer."""

from __future__ import annotations

import time

from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
from gpu_operator.exporter.serving import Exporter
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.gpu import Nvml

ALWAYS = [
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_XID_ERRORS",
]
GPM = [
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
    "DCGM_FI_PROF_PCIE_RX_BYTES",
]


def test_the_exporter_serves_the_default_families_of_a_real_gpu(real_nvml: Nvml) -> None:
    exporter = Exporter(
        real_nvml, ExporterSettings(hostname="gpu-test"), read_collectors(DEFAULT_COLLECTORS)
    )
    exporter.step()
    time.sleep(0.2)
    exporter.step()
    text = exporter.body.decode()
    served = {line.split("{")[0] for line in text.splitlines() if line and not line.startswith("#")}
    missing = [name for name in ALWAYS if name not in served]
    assert missing == []
    gpu = real_nvml.gpu(0)
    if gpu.mig_mode is None or not gpu.mig_mode.enabled:
        assert "DCGM_FI_DEV_GPU_UTIL" in served
    if real_nvml.gpm_supported(0):
        assert [name for name in GPM if name not in served] == []
    first = next(line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_TEMP{"))
    assert first.startswith(
        f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",UUID="{gpu.uuid}",pci_bus_id="{gpu.pci_bus_id}"'
    )
    print(f"served {len(served)} families; sample pass errors: {exporter.sampler.errors_total}")
    assert exporter.sampler.errors_total == 0
