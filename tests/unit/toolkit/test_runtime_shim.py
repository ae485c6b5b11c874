"""Our ``nvidia-container-runtime`` (the compiled shim), installed by the toolkit on a node with a
simulated GPU (CDI specs from the toolkit's generator, device nodes standing in for the GPU's):
on ``create`` a GPU container's ``config.json`` gets the device nodes, cgroup rules, mounts and
env of the spec (and stays valid against the OCI runtime-spec schema); a container without a GPU
request, and every other verb, passes to the low-level runtime untouched, byte for byte, argv
for argv; a request that can't be met fails with one line naming the device."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.toolkit import shim_install
from gpu_operator.toolkit.runtime_config import ShimSettings
from gpu_operator.toolkit.runtime_shim import NAMES, is_ours
from gpu_operator.toolkit.settings import ToolkitSettings

DATA = Path(__file__).parents[2] / "data" / "oci-runtime-spec"
PRESET = "a30x4"


def oci_validator() -> jsonschema.Draft4Validator:
    """The vendored runtime-spec schema; refs resolve by file name (``id``s included), the
    non-Linux platform sections to empty schemas."""

    def retrieve(uri: str) -> Resource[Any]:
        name = uri.rsplit("/", 1)[-1]
        path = DATA / name
        contents = json.loads(path.read_text()) if path.exists() else {name[7:-5]: {}}
        return DRAFT4.create_resource(contents)

    schema = json.loads((DATA / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def base_config() -> bytes:
    """runc's own ``runc spec`` (the installed runc's, else the vendored copy of one)."""
    runc = shutil.which("runc")
    if runc is None:
        return (DATA / "runc-spec.json").read_bytes()
    with tempfile.TemporaryDirectory() as where:
        subprocess.run([runc, "spec"], cwd=where, check=True, timeout=30)
        return Path(where, "config.json").read_bytes()


@dataclass
class Node:
    settings: ToolkitSettings
    dev: Path
    recorder: Path
    gpus: list[Any]

    @property
    def runtime(self) -> Path:
        return self.settings.toolkit_dir / NAMES[0]

    def bundle(self, tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        bundle = tmp / f"bundle-{len(list(tmp.glob('bundle-*')))}"
        bundle.mkdir()
        text = base_config()
        if edit is not None:
            config = json.loads(text)
            edit(config)
            text = json.dumps(config, indent=2).encode()
        (bundle / "config.json").write_bytes(text)
        return bundle

    def run(self, *argv: str, binary: Path | None = None) -> subprocess.CompletedProcess[str]:
        self.recorder.with_suffix(".argv").unlink(missing_ok=True)
        return subprocess.run(
            [str(binary or self.runtime), *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"PATH": os.environ["PATH"]},
        )

    def recorded_argv(self) -> list[str] | None:
        path = self.recorder.with_suffix(".argv")
        return path.read_text().splitlines() if path.exists() else None

    def reinstall(self, **shim: Any) -> None:
        self.settings = replace(
            self.settings, runtime_shim=replace(self.settings.runtime_shim, **shim)
        )
        shim_install.install(self.settings)


def _device_node(path: Path, minor: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.mknod(path, 0o666 | 0o020000, os.makedev(195, minor))
    else:
        path.symlink_to("/dev/null")  # a character device all the same


@pytest.fixture
def node(tmp_path: Path, shim_binary: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    """``toolkit install``'s shim files for a simulated a30x4 with its driver tree and device
    nodes; the low-level runtime is a recorder that notes its argv."""
    monkeypatch.setenv("GPU_OPERATOR_SIM", PRESET)
    with Nvml.open(HardwareSettings.from_env()) as nvml:
        version = nvml.system().driver_version
        gpus = nvml.gpus()
    driver = tmp_path / "driver"
    lib = driver / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
        (lib / f"{name}.so.{version}").write_bytes(name.encode())
    (driver / "usr/bin").mkdir(parents=True)
    (driver / "usr/bin/nvidia-smi").write_bytes(b"#!/bin/sh\n")
    dev = tmp_path / "devroot"
    for gpu in gpus:
        _device_node(dev / f"dev/nvidia{gpu.minor_number}", gpu.minor_number)
    for name, minor in (("nvidiactl", 255), ("nvidia-uvm", 0), ("nvidia-uvm-tools", 1)):
        _device_node(dev / "dev" / name, minor)
    recorder = tmp_path / "bin" / "recorder"
    recorder.parent.mkdir()
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.argv"\n')
    recorder.chmod(0o755)
    settings = ToolkitSettings(
        runtime="containerd",
        root=tmp_path / "usr-local-nvidia",
        driver_root=driver,
        dev_root=dev,
        shim_binary=shim_binary,
        runtime_shim=ShimSettings(runtimes=(str(recorder),)),
    )
    shim_install.install(settings)
    return Node(settings, dev, recorder, gpus)


def config_of(bundle: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return result


def with_env(*pairs: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        config["process"]["env"].extend(pairs)

    return edit


def test_install_puts_the_shim_its_config_and_json_specs_under_the_toolkit_dir(node: Node) -> None:
    toolkit = node.settings.toolkit_dir
    for name in NAMES:
        assert is_ours(toolkit / name)
        assert os.access(toolkit / name, os.X_OK)
    config = (toolkit / ".config/nvidia-container-runtime/config.toml").read_text()
    assert "[nvidia-container-runtime]" in config
    assert f'spec-dirs = ["{toolkit / "cdi"}", "/etc/cdi", "/var/run/cdi"]' in config
    spec = json.loads((toolkit / "cdi/nvidia.com-gpu.json").read_text())
    assert [d["name"] for d in spec["devices"]][:2] == ["0", node.gpus[0].uuid]
    assert "hooks" not in spec["containerEdits"], "hook-free: the host has no nvidia-cdi-hook"
    assert json.loads((toolkit / "cdi/management.nvidia.com-gpu.json").read_text())["kind"] == (
        "management.nvidia.com/gpu"
    )
    assert shim_install.install(node.settings) == [], "a second install writes nothing"


def test_a_gpu_container_gets_the_device_nodes_cgroup_rules_mounts_and_env(
    node: Node, tmp_path: Path
) -> None:
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=1"))
    done = node.run("--root", "/run/x", "create", "--bundle", str(bundle), "ctr-1")
    assert done.returncode == 0, done.stderr
    config = config_of(bundle)
    oci_validator().validate(config)
    gpu = node.gpus[1]
    devices = {d["path"]: d for d in config["linux"]["devices"]}
    assert set(devices) == {
        f"/dev/nvidia{gpu.minor_number}",
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
    }, "GPU 1 and the control nodes only"
    host = os.stat(node.dev / f"dev/nvidia{gpu.minor_number}")
    mine = devices[f"/dev/nvidia{gpu.minor_number}"]
    assert (mine["type"], mine["major"], mine["minor"]) == (
        "c",
        os.major(host.st_rdev),
        os.minor(host.st_rdev),
    )
    rules = config["linux"]["resources"]["devices"]
    assert {
        "allow": True,
        "type": "c",
        "major": mine["major"],
        "minor": mine["minor"],
        "access": "rwm",
    } in rules
    assert rules[0] == {"allow": False, "access": "rwm"}, "runc's deny-all stays first"
    mounts = {m["destination"]: m for m in config["mounts"]}
    libcuda = mounts["/usr/lib/nvidia-cdi/libcuda.so.1"]
    assert libcuda["type"] == "bind"
    assert libcuda["source"] == str(
        next((node.settings.driver_root / "usr/lib/x86_64-linux-gnu").glob("libcuda.so.*"))
    )
    assert "ro" in libcuda["options"]
    env = config["process"]["env"]
    assert "NVIDIA_VISIBLE_DEVICES=void" in env
    assert "NVIDIA_VISIBLE_DEVICES=1" not in env
    assert "LD_LIBRARY_PATH=/usr/lib/nvidia-cdi" in env
    assert node.recorded_argv() == ["--root", "/run/x", "create", "--bundle", str(bundle), "ctr-1"]


@pytest.mark.parametrize(
    ("request_env", "expected_minors"),
    [
        pytest.param("NVIDIA_VISIBLE_DEVICES=all", "all", id="all GPUs"),
        pytest.param("NVIDIA_VISIBLE_DEVICES=0,2", [0, 2], id="two GPUs by index"),
        pytest.param("NVIDIA_VISIBLE_DEVICES=uuid:3", [3], id="one GPU by UUID"),
        pytest.param("CUDA_VERSION=11.0.3", "all", id="a legacy CUDA image: all GPUs"),
        pytest.param("NVIDIA_VISIBLE_DEVICES=none", [], id="none: driver files, no GPU"),
    ],
)
def test_devices_are_resolved_by_index_uuid_and_all(
    node: Node, tmp_path: Path, request_env: str, expected_minors: Any
) -> None:
    if "uuid:" in request_env:
        request_env = f"NVIDIA_VISIBLE_DEVICES={node.gpus[3].uuid}"
    bundle = node.bundle(tmp_path, with_env(request_env))
    assert node.run("create", "-b", str(bundle), "c").returncode == 0
    wanted = (
        [g.minor_number for g in node.gpus]
        if expected_minors == "all"
        else [node.gpus[i].minor_number for i in expected_minors]
    )
    config = config_of(bundle)
    paths = {d["path"] for d in config["linux"]["devices"]}
    assert {p for p in paths if p[len("/dev/nvidia") :].isdigit()} == {
        f"/dev/nvidia{m}" for m in wanted
    }
    assert "/dev/nvidiactl" in paths
    assert any(m["destination"].endswith("libcuda.so.1") for m in config["mounts"])


def test_a_container_without_a_gpu_request_is_passed_through_byte_for_byte(
    node: Node, tmp_path: Path
) -> None:
    bundle = node.bundle(tmp_path)
    before = (bundle / "config.json").read_bytes()
    assert before == base_config(), "runc's own spec, untouched"
    argv = [
        "--root",
        "/run/runc",
        "--log",
        str(tmp_path / "log.json"),
        "--log-format",
        "json",
        "--systemd-cgroup",
        "create",
        "--bundle",
        str(bundle),
        "--pid-file",
        "p",
        "plain",
    ]
    done = node.run(*argv)
    assert done.returncode == 0
    assert done.stderr == ""
    assert (bundle / "config.json").read_bytes() == before
    assert node.recorded_argv() == argv


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(with_env("NVIDIA_VISIBLE_DEVICES=void"), id="NVIDIA_VISIBLE_DEVICES=void"),
        pytest.param(with_env("NVIDIA_VISIBLE_DEVICES="), id="NVIDIA_VISIBLE_DEVICES empty"),
        pytest.param(with_env("NOT_NVIDIA_VISIBLE_DEVICES_X=1"), id="a lookalike variable"),
    ],
)
def test_void_or_empty_requests_mean_no_gpu_and_no_rewrite(
    node: Node, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    bundle = node.bundle(tmp_path, edit)
    before = (bundle / "config.json").read_bytes()
    assert node.run("create", "--bundle", str(bundle), "c").returncode == 0
    assert (bundle / "config.json").read_bytes() == before


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(with_env("NVIDIA_VISIBLE_DEVICES=void"), id="parsed: void request"),
        pytest.param(
            lambda c: c.update({"annotations": {"note": "see cdi.k8s.io/ docs"}}),
            id="parsed: a lookalike annotation",
        ),
        pytest.param(None, id="not even parsed: no marker"),
    ],
)
def test_a_broken_shim_config_or_spec_never_breaks_a_non_gpu_container(
    node: Node, tmp_path: Path, edit: Callable[[dict[str, Any]], None] | None
) -> None:
    toolkit = node.settings.toolkit_dir
    config = toolkit / ".config/nvidia-container-runtime/config.toml"
    config.write_text(config.read_text() + "\nthis is = [ not toml\n")
    (toolkit / "cdi/nvidia.com-gpu.json").write_text("{ broken")
    bundle = node.bundle(tmp_path, edit)
    before = (bundle / "config.json").read_bytes()
    done = node.run("create", "--bundle", str(bundle), "c")
    assert done.returncode == 0, done.stderr
    assert (bundle / "config.json").read_bytes() == before
    assert node.recorded_argv() == ["create", "--bundle", str(bundle), "c"]


def test_a_config_json_that_is_not_json_is_left_for_the_runtime_to_refuse(
    node: Node, tmp_path: Path
) -> None:
    bundle = tmp_path / "bad"
    bundle.mkdir()
    (bundle / "config.json").write_bytes(b'{"process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"')
    assert node.run("create", "-b", str(bundle), "c").returncode == 0
    assert (bundle / "config.json").read_bytes().endswith(b'DEVICES=0"')


def test_the_schema_check_is_not_vacuous() -> None:
    config = json.loads(base_config())
    oci_validator().validate(config)
    config["linux"]["devices"] = [{"path": "/dev/nvidia0", "major": 195}]
    with pytest.raises(jsonschema.ValidationError, match="'type' is a required property"):
        oci_validator().validate(config)
    config["linux"]["devices"] = []
    config["mounts"].append({"destination": "/x", "source": "/y"})
    with pytest.raises(jsonschema.ValidationError, match="'type' is a required property"):
        oci_validator().validate(config)


def test_every_other_verb_passes_straight_through(node: Node, tmp_path: Path) -> None:
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=all"))
    before = (bundle / "config.json").read_bytes()
    for argv in (
        ["--root", "/r", "start", "c"],
        ["--log", "/l", "--log-format", "json", "delete", "--force", "c"],
        ["state", "c"],
        ["--version"],
        ["kill", "c", "9"],
    ):
        assert node.run(*argv).returncode == 0
        assert node.recorded_argv() == argv
    assert (bundle / "config.json").read_bytes() == before


def test_an_unknown_device_fails_with_one_line_naming_it_and_changes_nothing(
    node: Node, tmp_path: Path
) -> None:
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=7"))
    before = (bundle / "config.json").read_bytes()
    log = tmp_path / "runc-log.json"
    done = node.run("--log", str(log), "--log-format", "json", "create", "-b", str(bundle), "c")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "nvidia.com/gpu=7: no such CDI device" in done.stderr
    assert (bundle / "config.json").read_bytes() == before
    assert node.recorded_argv() is None, "the low-level runtime never ran"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error"
    assert "nvidia.com/gpu=7" in entry["msg"], "containerd reads the reason from the runtime's log"


def test_a_missing_device_node_on_the_host_fails_naming_the_node(
    node: Node, tmp_path: Path
) -> None:
    missing = node.dev / f"dev/nvidia{node.gpus[2].minor_number}"
    missing.unlink()
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=2"))
    done = node.run("create", "-b", str(bundle), "c")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"nvidia-container-runtime: nvidia.com/gpu=2: device node {missing}: "
        "No such file or directory"
    )


def test_a_broken_config_fails_a_gpu_container_naming_file_and_line(
    node: Node, tmp_path: Path
) -> None:
    config = node.settings.toolkit_dir / ".config/nvidia-container-runtime/config.toml"
    lines = config.read_text().splitlines()
    lines.insert(3, "accept-nvidia-visible-devices-as-volume-mounts = maybe")
    config.write_text("\n".join(lines) + "\n")
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=0"))
    done = node.run("create", "-b", str(bundle), "c")
    assert done.returncode == 1
    assert (
        f"{config}:4: accept-nvidia-visible-devices-as-volume-mounts: expected true or false"
        in (done.stderr)
    )


def _mount_request(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        config["mounts"].append(
            {
                "destination": f"/var/run/nvidia-container-devices/{name}",
                "type": "bind",
                "source": "/dev/null",
                "options": ["rbind", "ro"],
            }
        )

    return edit


def test_volume_mount_requests_count_only_when_accepted(node: Node, tmp_path: Path) -> None:
    uuid = node.gpus[0].uuid
    ignored = node.bundle(tmp_path, _mount_request(uuid))
    before = (ignored / "config.json").read_bytes()
    assert node.run("create", "-b", str(ignored), "c").returncode == 0
    assert (ignored / "config.json").read_bytes() == before, "accept-…-as-volume-mounts = false"

    node.reinstall(accept_volume_mounts=True)
    accepted = node.bundle(tmp_path, _mount_request(uuid))
    assert node.run("create", "-b", str(accepted), "c").returncode == 0
    paths = {d["path"] for d in config_of(accepted)["linux"]["devices"]}
    assert f"/dev/nvidia{node.gpus[0].minor_number}" in paths


def test_an_unprivileged_envvar_request_is_ignored_when_not_accepted(
    node: Node, tmp_path: Path
) -> None:
    node.reinstall(accept_envvar_unprivileged=False)
    unprivileged = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=0"))
    before = (unprivileged / "config.json").read_bytes()
    assert node.run("create", "-b", str(unprivileged), "c").returncode == 0
    assert (unprivileged / "config.json").read_bytes() == before

    def privileged(config: dict[str, Any]) -> None:
        with_env("NVIDIA_VISIBLE_DEVICES=0")(config)
        config["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")

    allowed = node.bundle(tmp_path, privileged)
    assert node.run("create", "-b", str(allowed), "c").returncode == 0
    assert any(d["path"] == "/dev/nvidiactl" for d in config_of(allowed)["linux"]["devices"])


def test_cdi_annotations_request_devices_by_fully_qualified_name(
    node: Node, tmp_path: Path
) -> None:
    def annotate(config: dict[str, Any]) -> None:
        config["annotations"] = {
            "cdi.k8s.io/nvidia-device-plugin_uid": f"nvidia.com/gpu={node.gpus[3].uuid}"
        }

    bundle = node.bundle(tmp_path, annotate)
    assert node.run("create", "-b", str(bundle), "c").returncode == 0
    paths = {d["path"] for d in config_of(bundle)["linux"]["devices"]}
    assert f"/dev/nvidia{node.gpus[3].minor_number}" in paths


def test_the_cdi_binary_maps_bare_names_to_the_default_kind(node: Node, tmp_path: Path) -> None:
    node.reinstall(default_kind="management.nvidia.com/gpu")
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=all"))
    cdi = node.settings.toolkit_dir / "nvidia-container-runtime.cdi"
    assert node.run("create", "-b", str(bundle), "c", binary=cdi).returncode == 0
    paths = {d["path"] for d in config_of(bundle)["linux"]["devices"]}
    assert {f"/dev/nvidia{g.minor_number}" for g in node.gpus} <= paths

    missing = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=0"))
    done = node.run("create", "-b", str(missing), "c", binary=cdi)
    assert "management.nvidia.com/gpu=0: no such CDI device" in done.stderr, (
        "the management spec has only 'all'"
    )


def test_strings_survive_the_rewrite_exactly(node: Node, tmp_path: Path) -> None:
    tricky = ['QUOTE="a\\b"', "NL=one\ntwo", "CTRL=\x01\x1f", "UTF8=é€😀", "TAB=\t"]
    bundle = node.bundle(tmp_path, with_env("NVIDIA_VISIBLE_DEVICES=0", *tricky))
    config = config_of(bundle)
    config["annotations"] = {"emoji/😀": "\u2028", "big": "9" * 40}
    config["linux"]["sysctl"] = {"net.x": "1"}
    (bundle / "config.json").write_text(json.dumps(config, ensure_ascii=True))
    before = json.loads((bundle / "config.json").read_text())
    assert node.run("create", "-b", str(bundle), "c").returncode == 0
    after = config_of(bundle)
    assert all(t in after["process"]["env"] for t in tricky)
    assert after["annotations"] == before["annotations"]
    assert after["process"]["rlimits"] == before["process"]["rlimits"]


def test_no_low_level_runtime_is_one_line(node: Node, tmp_path: Path) -> None:
    node.reinstall(runtimes=("no-such-runc", "/nowhere/crun"))
    done = node.run("state", "c")
    assert done.returncode == 1
    assert done.stderr == (
        "nvidia-container-runtime: no low-level runtime found "
        "(runtimes = [no-such-runc, /nowhere/crun])\n"
    )


def test_truncated_or_hostile_config_json_never_crashes_the_shim(
    node: Node, tmp_path: Path
) -> None:
    """Every prefix of a GPU container's config.json (and absurd nesting) is either applied or
    left to the runtime: the shim never crashes and never writes a half-understood file."""
    full = json.dumps(
        {**json.loads(base_config()), "annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=0"}}
    ).encode()
    hostile = [full[:cut] for cut in range(0, len(full), 97)]
    hostile += [b"[" * 100_000, b'{"a":' * 50_000 + b"NVIDIA_VISIBLE_DEVICES", b"\xff\xfe\x00"]
    hostile += [b'{"process":{"env":["NVIDIA_VISIBLE_DEVICES=0"]},"x":"\\ud800\\u0000"}']
    bundle = tmp_path / "hostile"
    bundle.mkdir()
    for data in hostile:
        (bundle / "config.json").write_bytes(data)
        done = node.run("create", "-b", str(bundle), "c")
        assert done.returncode in (0, 1), done.stderr
        if done.returncode == 0:
            after = (bundle / "config.json").read_bytes()
            assert after == data or json.loads(after)
