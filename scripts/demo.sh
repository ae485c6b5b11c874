#!/usr/bin/env bash
# make demo: the simulated hardware, end to end through the real NVML code path.
set -euo pipefail
BIN=.venv/bin
export GPU_OPERATOR_SIM_ROOT
GPU_OPERATOR_SIM_ROOT=$(mktemp -d -t gpu-operator-demo.XXXXXX)
trap 'rm -rf "$GPU_OPERATOR_SIM_ROOT"' EXIT

echo "== A simulated DGX A100 (8 x A100-SXM4-40GB), its MIG profiles on GPU 0"
$BIN/gpu-operator --sim dgx-a100 gpus --profiles
echo
echo "== all-balanced on the DGX A100 from the shipped default config (mig-parted compatible CLI)"
$BIN/gpu-operator --sim dgx-a100 mig apply -c all-balanced
$BIN/gpu-operator --sim dgx-a100 mig assert -c all-balanced
$BIN/gpu-operator --sim dgx-a100 gpus | tail -12
echo
echo "== A layout that cannot fit is refused before anything changes"
printf 'version: v1\nmig-configs:\n  too-much:\n    - devices: [0]\n      mig-enabled: true\n      mig-devices: {"3g.20gb": 2, "1g.5gb": 1}\n' > "$GPU_OPERATOR_SIM_ROOT/too-much.yaml"
$BIN/gpu-operator --sim dgx-a100 mig apply -f "$GPU_OPERATOR_SIM_ROOT/too-much.yaml" -c too-much || true
echo
echo "== A simulated H200: all-balanced, the exporter's view, then a fault"
$BIN/gpu-operator --sim h200 mig apply -c all-balanced
$BIN/gpu-operator --sim h200 gpus
GPU_OPERATOR_SIM=h200 $BIN/python - <<'PY'
from gpu_operator.exporter.collectors_csv import DEFAULT_COLLECTORS, read_collectors
from gpu_operator.exporter.serving import Exporter
from gpu_operator.exporter.settings import ExporterSettings
from gpu_operator.gpu import Nvml

with Nvml.open() as nvml:
    exporter = Exporter(nvml, ExporterSettings(hostname="demo-node"), read_collectors(DEFAULT_COLLECTORS))
    exporter.step()
    print("\n".join(l for l in exporter.body.decode().splitlines() if l.startswith("DCGM_FI_DEV_FB_FREE")))
PY
$BIN/gpu-operator --sim h200 sim xid 0 --code 79
$BIN/gpu-operator --sim h200 sim lose 0
$BIN/gpu-operator --sim h200 gpus
