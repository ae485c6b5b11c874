#!/usr/bin/env bash
# On a GPU machine without a package registry, after scripts/device_wheels.sh built .whl/ (and
# optionally .whl-baseline/) here: install into /tmp/site (and /tmp/site-baseline), then run the
# `gpu` test suite and the footprint, facade and exporter benchmarks on the real GPU. Reads
# only; never changes the GPU's settings. Logs go to $OUT (default /tmp/device-check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/device-check}"
mkdir -p "$OUT"
# Bytecode is compiled at install, as the image's install does: the device machine sets
# PYTHONDONTWRITEBYTECODE=1, so a --no-compile install would compile every module at every start
# and the footprint figures would not be what a node runs.
install() {  # install() TARGET PROJECT_WHEEL_DIR
  python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade \
    --target "$1" $(ls .whl/*.whl | grep -v '/gpu_operator-') "$2"/gpu_operator-*.whl
}
install /tmp/site .whl || exit 1
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,pci.device_id,vbios_version,driver_version,memory.total,memory.used,memory.reserved,clocks.sm,clocks.mem,power.draw,pstate --format=csv
  nproc; python3 --version; uname -r
} 2>&1 | tee "$OUT/machine.txt"
with() {  # with() SITE COMMAND...: run with that installation first on the paths
  local site=$1; shift
  PYTHONPATH="$site" PATH="$site/bin:$PATH" "$@"
}
with /tmp/site python3 -m pytest -q -m gpu tests/gpu -p no:cacheprovider -rs -s 2>&1 \
  | tee "$OUT/gpu-suite.txt"
with /tmp/site python3 -P bench/footprint.py --real --help-runs ${HELP_RUNS:-10} --scrapes 5000 2>&1 \
  | tee "$OUT/footprint.txt"
with /tmp/site python3 -P bench/bench_nvml_facade.py 500 2>&1 | tee "$OUT/facade.txt"
if [ -d .whl-baseline ] && [ -z "${SKIP_BASELINE:-}" ]; then
  install /tmp/site-baseline .whl-baseline || exit 1
  with /tmp/site-baseline python3 -P bench/footprint.py --real --help-runs 2 --scrapes 5000 \
    2>&1 | tee "$OUT/footprint-baseline.txt"
  with /tmp/site-baseline python3 -P bench/bench_nvml_facade.py 500 2>&1 \
    | tee "$OUT/facade-baseline.txt"
fi
