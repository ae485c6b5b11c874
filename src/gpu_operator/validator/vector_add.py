"""``validator cuda-workload``: the vectorAdd sample, for real. The kernel is compiled with NVRTC
(or, where libnvrtc is not installed, the same kernel's PTX shipped below is JIT-compiled by the
driver), launched through the CUDA driver API (``cuda-bindings``, the optional ``cuda`` extra,
imported only here and only when called), and every element of the result is checked. On a
simulated node the GPUs are checked through the NVML facade and the sum is done on the host."""

from __future__ import annotations

import ctypes
import random
from dataclasses import dataclass
from typing import Any

from gpu_operator.errors import GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.validator.running import ValidationFailed

KERNEL_SOURCE = r"""
extern "C" __global__ void vectorAdd(const float *A, const float *B, float *C, int n)
{
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i < n) { C[i] = A[i] + B[i]; }
}
"""

KERNEL_PTX = r"""
.version 6.0
.target sm_50
.address_size 64

.visible .entry vectorAdd(.param .u64 A, .param .u64 B, .param .u64 C, .param .u32 N)
{
    .reg .pred %p<2>;
    .reg .f32 %f<4>;
    .reg .b32 %r<6>;
    .reg .b64 %rd<11>;

    ld.param.u64 %rd1, [A];
    ld.param.u64 %rd2, [B];
    ld.param.u64 %rd3, [C];
    ld.param.u32 %r2, [N];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.s32 %p1, %r1, %r2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mul.wide.s32 %rd7, %r1, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    add.f32 %f3, %f1, %f2;
    st.global.f32 [%rd10], %f3;
DONE:
    ret;
}
"""

ELEMENTS = 50_000
THREADS = 256


@dataclass(frozen=True)
class WorkloadResult:
    device: str
    elements: int
    compiler: str
    """``nvrtc X.Y``, ``driver PTX JIT`` or ``simulated``."""

    def summary(self) -> str:
        return (
            f"vectorAdd of {self.elements} elements on {self.device} passed ({self.compiler}); "
            "Test PASSED"
        )


def _inputs(n: int) -> tuple[list[float], list[float]]:
    rng = random.Random(1)
    return [rng.random() for _ in range(n)], [rng.random() for _ in range(n)]


def _check(a: list[float], b: list[float], c: Any, n: int) -> None:
    for i in range(n):
        expected = ctypes.c_float(ctypes.c_float(a[i]).value + ctypes.c_float(b[i]).value).value
        if abs(c[i] - expected) > 1e-5:
            raise ValidationFailed(
                "cuda", "vectorAdd result check", f"element {i}: {c[i]} != {a[i]} + {b[i]}"
            )


def run_simulated(hardware: HardwareSettings, n: int = ELEMENTS) -> WorkloadResult:
    try:
        with Nvml.open(hardware) as nvml:
            gpus = nvml.gpus()
    except GpuOperatorError as error:
        raise ValidationFailed(
            "cuda", f"NVML on simulated node {hardware.sim}", str(error)
        ) from error
    if not gpus:
        raise ValidationFailed("cuda", f"NVML on simulated node {hardware.sim}", "no GPUs")
    a, b = _inputs(n)
    c = [ctypes.c_float(x + y).value for x, y in zip(a, b, strict=True)]
    _check(a, b, c, n)
    return WorkloadResult(f"simulated {gpus[0].name}", n, "simulated")


def _ok(check: str, result: Any) -> Any:
    """cuda-bindings returns ``(error, *values)``; raise on a non-zero error."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise ValidationFailed("cuda", check, f"{error!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _compile(nvrtc: Any, major: int, minor: int) -> tuple[bytes, str]:
    """PTX for this GPU from NVRTC, or the shipped PTX when NVRTC can't be loaded."""
    try:
        version = _ok("nvrtcVersion", nvrtc.nvrtcVersion())
    except (RuntimeError, OSError, ValidationFailed):
        return KERNEL_PTX.encode(), "driver PTX JIT (libnvrtc not installed)"
    program = _ok(
        "nvrtcCreateProgram",
        nvrtc.nvrtcCreateProgram(KERNEL_SOURCE.encode(), b"vectorAdd.cu", 0, [], []),
    )
    options = [f"--gpu-architecture=compute_{major}{minor}".encode(), b"--fmad=false"]
    result = nvrtc.nvrtcCompileProgram(program, len(options), options)
    if int(result[0]) != 0:
        size = _ok("nvrtcGetProgramLogSize", nvrtc.nvrtcGetProgramLogSize(program))
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(program, log)
        raise ValidationFailed(
            "cuda", "nvrtcCompileProgram vectorAdd.cu", log.decode(errors="replace")
        )
    size = _ok("nvrtcGetPTXSize", nvrtc.nvrtcGetPTXSize(program))
    ptx = b" " * size
    _ok("nvrtcGetPTX", nvrtc.nvrtcGetPTX(program, ptx))
    return ptx, f"nvrtc {version[0]}.{version[1]}"


def run_real(n: int = ELEMENTS) -> WorkloadResult:
    """vectorAdd on GPU 0 of ``CUDA_VISIBLE_DEVICES`` / ``NVIDIA_VISIBLE_DEVICES``."""
    try:
        from cuda.bindings import driver, nvrtc  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise ValidationFailed(
            "cuda",
            "import cuda.bindings",
            "the 'cuda' extra is not installed (pip install 'gpu-operator[cuda]')",
        ) from error
    attr = driver.CUdevice_attribute
    _ok("cuInit", driver.cuInit(0))
    device = _ok("cuDeviceGet", driver.cuDeviceGet(0))
    name = _ok("cuDeviceGetName", driver.cuDeviceGetName(128, device)).split(b"\0")[0].decode()
    major = _ok(
        "cuDeviceGetAttribute",
        driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
    )
    minor = _ok(
        "cuDeviceGetAttribute",
        driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
    )
    ptx, compiler = _compile(nvrtc, major, minor)
    context = _ok("cuDevicePrimaryCtxRetain", driver.cuDevicePrimaryCtxRetain(device))
    try:
        _ok("cuCtxSetCurrent", driver.cuCtxSetCurrent(context))
        image = ctypes.create_string_buffer(ptx.rstrip(b"\0 ") + b"\0")
        module = _ok("cuModuleLoadData", driver.cuModuleLoadData(ctypes.addressof(image)))
        kernel = _ok("cuModuleGetFunction", driver.cuModuleGetFunction(module, b"vectorAdd"))
        a, b = _inputs(n)
        host_a, host_b = (ctypes.c_float * n)(*a), (ctypes.c_float * n)(*b)
        host_c = (ctypes.c_float * n)()
        size = ctypes.sizeof(host_a)
        buffers = [_ok("cuMemAlloc", driver.cuMemAlloc(size)) for _ in range(3)]
        try:
            _ok("cuMemcpyHtoD", driver.cuMemcpyHtoD(buffers[0], ctypes.addressof(host_a), size))
            _ok("cuMemcpyHtoD", driver.cuMemcpyHtoD(buffers[1], ctypes.addressof(host_b), size))
            values = [ctypes.c_uint64(int(buf)) for buf in buffers] + [ctypes.c_int32(n)]
            params = (ctypes.c_void_p * 4)(*(ctypes.addressof(v) for v in values))
            blocks = (n + THREADS - 1) // THREADS
            _ok(
                "cuLaunchKernel vectorAdd",
                driver.cuLaunchKernel(
                    kernel, blocks, 1, 1, THREADS, 1, 1, 0, 0, ctypes.addressof(params), 0
                ),
            )
            _ok("cuCtxSynchronize", driver.cuCtxSynchronize())
            _ok("cuMemcpyDtoH", driver.cuMemcpyDtoH(ctypes.addressof(host_c), buffers[2], size))
        finally:
            for buf in buffers:
                driver.cuMemFree(buf)
            driver.cuModuleUnload(module)
        _check(a, b, host_c, n)
    finally:
        driver.cuDevicePrimaryCtxRelease(device)
    return WorkloadResult(name, n, compiler)


def run_workload(hardware: HardwareSettings) -> WorkloadResult:
    return run_simulated(hardware) if hardware.simulated else run_real()
