#!/bin/sh
# Runs INSIDE the built image (docker run --rm IMAGE sh /smoke-test.sh, or buildah run): the
# image's user, every upstream-named executable, the CLI on simulated GPUs, a MIG apply and
# assert, the exporter serving metrics, the chart-less renderer. Exit 0 = the image works.
set -eu
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 65532 ] || fail "runs as uid $(id -u), not 65532"
for exe in gpu-operator nvidia-device-plugin gpu-feature-discovery nvidia-mig-manager \
    nvidia-mig-parted nvidia-validator dcgm-exporter nvidia-toolkit vectorAdd driver-manager \
    gpu-node-labeler config-manager; do
  command -v "$exe" >/dev/null || fail "$exe is not on PATH"
  "$exe" --help >/dev/null 2>&1 || fail "$exe --help exits non-zero"
done
echo "smoke: 12 executables answer --help as uid 65532"

export GPU_OPERATOR_SIM=dgx-a100 GPU_OPERATOR_SIM_ROOT=/tmp/sim
gpu-operator gpus | grep -q "A100-SXM4-40GB" || fail "gpus does not list the simulated A100s"
nvidia-mig-parted apply -c all-balanced >/dev/null || fail "mig apply all-balanced"
nvidia-mig-parted assert -c all-balanced >/dev/null || fail "mig assert all-balanced"
echo "smoke: simulated dgx-a100: gpus, mig apply + assert all-balanced"

dcgm-exporter --address 127.0.0.1:19400 >/tmp/exporter.log 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
python - <<'PY' || { cat /tmp/exporter.log >&2; fail "the exporter served no GPU metrics"; }
import time, urllib.request
for _ in range(100):
    try:
        text = urllib.request.urlopen("http://127.0.0.1:19400/metrics", timeout=1).read().decode()
        if "DCGM_FI_DEV_FB_USED{" in text and 'GPU_I_PROFILE="3g.20gb"' in text:
            raise SystemExit(0)
    except OSError:
        pass
    time.sleep(0.1)
raise SystemExit(1)
PY
kill "$pid"
echo "smoke: dcgm-exporter serves MIG series on :19400"

gpu-operator render --help >/dev/null || fail "render"
echo "smoke: OK"
