#!/usr/bin/env bash
# make demo: the seed story on a simulated cluster (gpu-operator sandbox demo). Two Rocky Linux
# 8.5 nodes with 8 x A100-40GB, the chart installed by the real helm with the seed's values,
# MIG all-balanced, every operand running, then a pod on one MIG 3g.20gb slice and its metrics.
# Needs .tools/helm (make test fetches it; so does this script).
set -euo pipefail
BIN=.venv/bin
test -x .tools/helm || "$BIN/python" scripts/fetch_helm.py
exec "$BIN/gpu-operator" sandbox demo "$@"
