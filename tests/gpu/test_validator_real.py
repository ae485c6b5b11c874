"""The validator and the CDI generator on this machine's real GPUs and driver, read only:
vectorAdd through cuda-bindings (NVRTC + driver API), the driver component's nvidia-smi, and a
CDI spec from the real driver tree that validates against the CDI schema. Skipped without a
driver; the workload also without the 'cuda' extra."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.toolkit.cdi_generate import CdiOptions, generate
from gpu_operator.toolkit.driver_tree import discover
from gpu_operator.validator.driver import find_nvidia_smi, validate_driver
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.vector_add import run_real

SCHEMA = Path(__file__).parents[1] / "data" / "cdi-schema.json"
REAL = HardwareSettings(sim=None)


def test_vector_add_runs_on_the_first_gpu_and_every_element_is_right(real_nvml: Nvml) -> None:
    pytest.importorskip("cuda.bindings", reason="the 'cuda' extra (cuda-bindings) is not installed")
    result = run_real(n=1 << 20)
    first = real_nvml.gpus()[0].name
    assert result.device == first, (result.device, first)
    assert result.elements == 1 << 20
    assert result.compiler.startswith(("nvrtc ", "driver PTX JIT"))
    assert result.summary().endswith("Test PASSED")


def test_vector_add_also_runs_from_the_shipped_ptx(
    real_nvml: Nvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cuda.bindings", reason="the 'cuda' extra (cuda-bindings) is not installed")
    from gpu_operator.validator import vector_add

    def no_nvrtc(*_args: object) -> tuple[bytes, str]:
        return vector_add.KERNEL_PTX.encode(), "driver PTX JIT (test)"

    monkeypatch.setattr(vector_add, "_compile", no_nvrtc)
    assert run_real(n=4096).compiler == "driver PTX JIT (test)"


def test_the_driver_component_proves_the_host_driver_with_nvidia_smi(
    real_nvml: Nvml, tmp_path: Path
) -> None:
    if find_nvidia_smi(Path("/")) is None:
        pytest.skip("no nvidia-smi in upstream's host search path (/usr/bin, /usr/sbin, ...)")
    settings = ValidatorSettings(
        component="driver",
        host_root_ctr_path=Path("/"),
        dev_char_dir=tmp_path / "not-here",  # read only: no /dev/char links
        output_dir=tmp_path,
    )
    assert validate_driver(settings, REAL).startswith("IS_HOST_DRIVER=true\n")


def test_a_cdi_spec_from_the_real_driver_tree_is_valid_and_names_every_gpu(
    real_nvml: Nvml,
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    version = real_nvml.system().driver_version
    roots = [Path(p) for p in ("/", "/usr/local/nvidia", "/run/nvidia/driver")]
    tree = next((t for t in (discover(r, version) for r in roots) if t.libraries), None)
    if tree is None:
        pytest.skip(f"no libraries of driver {version} under {', '.join(map(str, roots))}")
    gpus = real_nvml.gpus()
    migs = {
        g.index: real_nvml.mig_devices(g.index) for g in gpus if g.mig_mode and g.mig_mode.enabled
    }
    spec = generate(gpus, migs, tree, CdiOptions())
    jsonschema.validate(spec, json.loads(SCHEMA.read_text()))

    names = {d["name"] for d in spec["devices"]}
    for gpu in gpus:
        assert {str(gpu.index), gpu.uuid} <= names
        assert Path(f"/dev/nvidia{gpu.minor_number}").exists()
    assert "all" in names
    sonames = {lib.soname for lib in tree.libraries}
    assert {"libcuda.so.1", "libnvidia-ml.so.1"} <= sonames, sonames
    mounts = {m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    assert any(p.endswith(f"libcuda.so.{version}") for p in mounts)
