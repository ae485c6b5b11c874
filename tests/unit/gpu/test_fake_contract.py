"""The simulator is a faithful stand-in for pynvml: every NVML function the facade calls exists
in both, with the same parameters, and errors are pynvml's own classes with the same codes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pynvml
import pytest

from gpu_operator.gpu.fake.nvml_events import FakeNvml

FACADE = Path(__file__).parents[3] / "src" / "gpu_operator" / "gpu"
FACADE_MODULES = ["session.py", "instances.py", "counters.py", "watching.py", "compute_policy.py"]
# Taken at import, before the autouse guard swaps nvmlInit for a refusing stub.
PYNVML = {name: getattr(pynvml, name) for name in dir(pynvml) if name.startswith("nvml")}


def nvml_functions_the_facade_calls() -> list[str]:
    names: set[str] = set()
    for module in FACADE_MODULES:
        source = (FACADE / module).read_text()
        names |= set(re.findall(r"\b(nvml[A-Z]\w+)\b", source))
    return sorted(n for n in names if inspect.isfunction(PYNVML.get(n)))


def test_the_facade_calls_a_known_set_of_functions() -> None:
    found = nvml_functions_the_facade_calls()
    assert "nvmlDeviceGetGpuInstancePossiblePlacements" in found
    assert "nvmlEventSetWait_v2" in found
    assert len(found) > 40


@pytest.mark.parametrize("name", nvml_functions_the_facade_calls())
def test_the_fake_defines_each_function_with_pynvmls_parameters(name: str) -> None:
    fake = inspect.getattr_static(FakeNvml, name, None)
    assert fake is not None, f"FakeNvml lacks {name}"
    real_params = list(inspect.signature(PYNVML[name]).parameters)
    fake_params = list(inspect.signature(fake).parameters)[1:]  # drop self
    assert fake_params == real_params


def test_the_fake_raises_pynvmls_own_error_classes() -> None:
    error = pynvml.NVMLError(pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    assert type(error) is pynvml.NVMLError_InsufficientResources
    assert error.value == 23


def test_constants_and_structs_are_pynvmls_objects(tmp_path: Path) -> None:
    from gpu_operator.gpu import HardwareSettings
    from gpu_operator.gpu.backend import load_nvml

    fake = load_nvml(HardwareSettings(sim="t4", sim_root=tmp_path))
    assert fake.NVML_ERROR_IN_USE == pynvml.NVML_ERROR_IN_USE
    assert fake.c_nvmlGpuInstancePlacement_t is pynvml.c_nvmlGpuInstancePlacement_t
    assert fake.NVMLError_NotFound is pynvml.NVMLError_NotFound


def test_a_pynvml_function_the_fake_lacks_is_an_attribute_error_not_a_silent_pass(
    tmp_path: Path,
) -> None:
    from gpu_operator.gpu import HardwareSettings
    from gpu_operator.gpu.backend import load_nvml

    fake = load_nvml(HardwareSettings(sim="t4", sim_root=tmp_path))
    with pytest.raises(AttributeError, match="does not implement nvmlDeviceGetFanSpeed"):
        _ = fake.nvmlDeviceGetFanSpeed
