"""The MIG apply's in-use check on a real GPU, read only: while a real CUDA context holds GPU 0,
``gpu_users`` lists its process and a plan that would change GPU 0 is refused before anything
is done. The plan is only checked, never applied: no MIG mode or setting changes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import GpuInUse, gpu_users, refuse_if_in_use
from gpu_operator.mig.plan import GpuChange, Plan

HOLD = """
import sys, time
from cuda.bindings import driver as cu
cu.cuInit(0)
_, dev = cu.cuDeviceGet(0)
_, ctx = cu.cuDevicePrimaryCtxRetain(dev)
cu.cuCtxSetCurrent(ctx)
_, ptr = cu.cuMemAlloc(64 << 20)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_cuda_process_on_gpu_0_is_listed_and_a_plan_changing_gpu_0_is_refused(
    real_nvml: Nvml,
) -> None:
    pytest.importorskip("cuda.bindings", reason="the 'cuda' extra (cuda-bindings) is not installed")
    assert gpu_users(real_nvml, [0]) == [], "GPU 0 must be idle to start with"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        users = gpu_users(real_nvml, [0])
        assert users, "NVML lists the CUDA context's process"
        gpu = real_nvml.gpu(0)
        assert {u.device for u in users} == {gpu.uuid}
        assert {u.profile for u in users} == {""}, "MIG is off here: the whole GPU"
        change = GpuChange(index=0, label=f"GPU 0 ({gpu.name})", why="test", set_mode=True)
        with pytest.raises(GpuInUse) as refused:
            refuse_if_in_use(real_nvml, Plan((change,), {}))
        assert str(refused.value).startswith(f"GPU 0 ({gpu.name}) is in use by pid ")
        assert "Nothing was changed" in str(refused.value)
        mode = real_nvml.mig_mode(0)
        assert mode is None or not mode.change_pending, "nothing was set"
    finally:
        holder.communicate("", timeout=30)
    deadline = time.monotonic() + 10
    while gpu_users(real_nvml, [0]) and time.monotonic() < deadline:
        time.sleep(0.1)  # the driver drops a context a moment after its process exits
    assert gpu_users(real_nvml, [0]) == [], "the process is gone once it exits"
