"""CDI specs from simulated nodes (every preset), validated against the JSON schema written from
the CDI spec: device names by index, UUID and ``all``, MIG devices after all-balanced with their
capability nodes, driver mounts and hooks, the management spec, and the hook-free mode."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml

from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_spec
from gpu_operator.toolkit.cdi_generate import (
    CdiOptions,
    generate,
    management_spec,
    mig_cap_minor,
    parse_mig_minors,
)
from gpu_operator.toolkit.driver_tree import DriverTree, discover, elf_soname
from helpers.cdi import validate

PRESETS = ["dgx-a100", "hgx-h100", "h200", "a30x4", "t4"]
OpenSim = Callable[..., Nvml]


def driver_tree(tmp_path: Path, version: str) -> DriverTree:
    """A driver root laid out as the driver container has it; libnvidia-ml is a real ELF (a
    copy of this system's libc) so its SONAME is read from the ELF header."""
    root = tmp_path / "driver"
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ptxjitcompiler", "libnvidia-cfg", "libGLX_nvidia"):
        (lib / f"{name}.so.{version}").write_bytes(b"not elf")
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if libc.exists():
        shutil.copy(libc.resolve(), lib / f"libnvidia-ml.so.{version}")
    (lib / "libunrelated.so.1").write_bytes(b"")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/nvidia-smi").write_bytes(b"")
    firmware = root / "lib/firmware/nvidia" / version
    firmware.mkdir(parents=True)
    (firmware / "gsp_ga10x.bin").write_bytes(b"")
    return discover(root, version)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_gives_a_valid_spec_with_index_uuid_and_all_devices(
    preset: str, open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim(preset)
    gpus = nvml.gpus()
    tree = driver_tree(tmp_path, nvml.system().driver_version)
    spec = generate(gpus, {}, tree)
    validate(spec)

    names = [d["name"] for d in spec["devices"]]
    assert names == [n for g in gpus for n in (str(g.index), g.uuid)] + ["all"]
    by_name = {d["name"]: d["containerEdits"]["deviceNodes"] for d in spec["devices"]}
    for gpu in gpus:
        assert by_name[gpu.uuid] == [{"path": f"/dev/nvidia{gpu.minor_number}"}]
    assert [n["path"] for n in by_name["all"]] == [f"/dev/nvidia{g.minor_number}" for g in gpus]
    assert spec["kind"] == "nvidia.com/gpu"


def test_dgx_a100_after_all_balanced_lists_mig_devices_with_their_capability_nodes(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("dgx-a100")
    apply_config(nvml, default_spec().select("all-balanced"))
    gpus = nvml.gpus()
    migs = {g.index: nvml.mig_devices(g.index) for g in gpus}
    spec = generate(gpus, migs, driver_tree(tmp_path, nvml.system().driver_version))
    validate(spec)

    names = [d["name"] for d in spec["devices"]]
    assert [str(i) for i in range(8)] == [n for n in names if n.isdigit()]
    assert sum(":" in n for n in names) == 8 * 4, "4 MIG devices per GPU by index"
    assert sum(n.startswith("MIG-") for n in names) == 32
    first = migs[0][0]
    nodes = next(d for d in spec["devices"] if d["name"] == "0:0")["containerEdits"]
    gi, ci = first.gpu_instance_id, first.compute_instance_id
    assert [n["path"] for n in nodes["deviceNodes"]] == [
        "/dev/nvidia0",
        f"/dev/nvidia-caps/nvidia-cap{mig_cap_minor(0, gi)}",
        f"/dev/nvidia-caps/nvidia-cap{mig_cap_minor(0, gi, ci)}",
    ]


def test_mig_capability_minors_follow_the_drivers_mig_minors_table() -> None:
    table = "config 1\nmonitor 2\ngpu0/gi0/access 3\ngpu0/gi0/ci0/access 4\n"
    table += "gpu0/gi1/access 12\ngpu0/gi1/ci0/access 13\ngpu1/gi0/access 138\n"
    minors = parse_mig_minors(table)
    assert mig_cap_minor(0, 1) == minors["gpu0/gi1/access"]
    assert mig_cap_minor(0, 1, 0) == minors["gpu0/gi1/ci0/access"]
    assert mig_cap_minor(1, 0) == minors["gpu1/gi0/access"]


def test_common_edits_mount_driver_files_and_run_the_cdi_hooks(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("h200")
    version = nvml.system().driver_version
    tree = driver_tree(tmp_path, version)
    edits = generate(nvml.gpus(), {}, tree)["containerEdits"]
    lib = "/usr/lib/x86_64-linux-gnu"
    mounts = {m["containerPath"]: m for m in edits["mounts"]}
    assert f"{lib}/libcuda.so.{version}" in mounts
    assert mounts[f"{lib}/libcuda.so.{version}"]["hostPath"] == str(
        tree.root / f"usr/lib/x86_64-linux-gnu/libcuda.so.{version}"
    )
    assert mounts["/usr/bin/nvidia-smi"]["options"] == [
        "ro",
        "nosuid",
        "nodev",
        "rbind",
        "rprivate",
    ]
    assert f"/lib/firmware/nvidia/{version}/gsp_ga10x.bin" in mounts
    assert not any("libunrelated" in p for p in mounts)
    assert [n["path"] for n in edits["deviceNodes"]][:3] == [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
    ]
    assert f"NVIDIA_CTK_LIBCUDA_DIR={lib}" in edits["env"]
    hooks = [h["args"][1] for h in edits["hooks"]]
    assert hooks == [
        "create-symlinks",
        "enable-cuda-compat",
        "update-ldcache",
        "disable-device-node-modification",
    ]
    assert edits["hooks"][0]["args"][2:] == ["--link", f"libcuda.so.1::{lib}/libcuda.so"]
    assert all(h["path"] == "/usr/bin/nvidia-cdi-hook" for h in edits["hooks"])


def test_hook_free_mode_mounts_libraries_by_soname_into_one_dir_and_sets_ld_library_path(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("t4")
    version = nvml.system().driver_version
    spec = generate(nvml.gpus(), {}, driver_tree(tmp_path, version), CdiOptions(hooks=False))
    validate(spec)
    edits = spec["containerEdits"]
    assert "hooks" not in edits
    assert "LD_LIBRARY_PATH=/usr/lib/nvidia-cdi" in edits["env"]
    targets = {m["containerPath"] for m in edits["mounts"]}
    assert {
        "/usr/lib/nvidia-cdi/libcuda.so.1",
        "/usr/lib/nvidia-cdi/libcuda.so",
        "/usr/lib/nvidia-cdi/libGLX_nvidia.so.0",
        "/usr/lib/nvidia-cdi/libnvidia-ptxjitcompiler.so.1",
        f"/usr/lib/nvidia-cdi/libnvidia-cfg.so.{version}",
    } <= targets
    if Path("/lib/x86_64-linux-gnu/libc.so.6").exists():
        assert "/usr/lib/nvidia-cdi/libc.so.6" in targets, "SONAME read from the ELF header"


def test_elf_sonames_come_from_the_dynamic_section() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("no x86_64 libc to read")
    assert elf_soname(libc.resolve()) == "libc.so.6"
    assert elf_soname(Path(__file__)) is None


def test_the_management_spec_has_one_device_all_with_every_node(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("a30x4")
    tree = driver_tree(tmp_path, nvml.system().driver_version)
    spec = management_spec(
        tree, [f"/dev/nvidia{g.minor_number}" for g in nvml.gpus()], CdiOptions()
    )
    validate(spec)
    assert spec["kind"] == "management.nvidia.com/gpu"
    assert [d["name"] for d in spec["devices"]] == ["all"]
    paths = [n["path"] for n in spec["devices"][0]["containerEdits"]["deviceNodes"]]
    assert {"/dev/nvidia0", "/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= set(paths)


def test_the_schema_rejects_what_the_cdi_spec_forbids() -> None:
    good = {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}],
    }
    validate(good)
    for bad in (
        {**good, "kind": "nvidia.com"},
        {**good, "devices": []},
        {**good, "devices": [{"name": "-x", "containerEdits": {"env": ["A=1"]}}]},
        {**good, "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "rel"}]}}]},
        {**good, "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_install_with_cdi_writes_the_management_spec_with_host_paths_and_uninstall_removes_it(
    tmp_path: Path, toolkit_root: Path
) -> None:
    from gpu_operator.toolkit.install import install, uninstall
    from gpu_operator.toolkit.settings import ToolkitSettings

    ctr_root = tmp_path / "driver-root"  # where this container sees /run/nvidia/driver
    lib = ctr_root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libcuda.so.580.95.05").write_bytes(b"")
    (lib / "libnvidia-ml.so.580.95.05").write_bytes(b"")
    dev_root = tmp_path / "host"
    (dev_root / "dev/nvidia-caps").mkdir(parents=True)
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-caps/nvidia-cap12"):
        (dev_root / "dev" / node).write_bytes(b"")
    settings = ToolkitSettings(
        runtime="docker",
        root=toolkit_root,
        config=tmp_path / "daemon.json",
        restart_mode="none",
        cdi_enabled=True,
        runtime_version="27.0.0",
        driver_root=Path("/run/nvidia/driver"),
        driver_root_ctr_path=ctr_root,
        dev_root=dev_root,
        cdi_output_dir=tmp_path / "cdi",
    )
    install(settings)
    spec_file = tmp_path / "cdi" / "management.nvidia.com-gpu.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    validate(spec)
    assert spec["kind"] == "management.nvidia.com/gpu"
    nodes = spec["devices"][0]["containerEdits"]["deviceNodes"]
    assert {"path": "/dev/nvidia1", "hostPath": f"{dev_root}/dev/nvidia1"} in nodes
    assert {n["path"] for n in nodes} >= {"/dev/nvidia-caps/nvidia-cap12", "/dev/nvidiactl"}
    mounts = {m["containerPath"]: m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    assert mounts["/usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05"] == (
        "/run/nvidia/driver/usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05"
    )
    assert install(settings) == []
    uninstall(settings)
    assert not spec_file.exists()
    assert not (tmp_path / "daemon.json").exists()
