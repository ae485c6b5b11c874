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
echo "== A simulated H200: 'all-balanced' by hand (2x1g.18gb + 2g.35gb + 3g.71gb), then a fault"
GPU_OPERATOR_SIM=h200 $BIN/python scripts/demo_mig.py
$BIN/gpu-operator --sim h200 gpus
$BIN/gpu-operator --sim h200 sim xid 0 --code 79
$BIN/gpu-operator --sim h200 sim lose 0
$BIN/gpu-operator --sim h200 gpus
