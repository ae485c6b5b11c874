"""CDI specs as ``nvidia-ctk cdi generate`` writes them (pure: GPU records and a driver tree in,
a spec dict out): devices by index, UUID and ``all``, MIG devices with their capability device
nodes, common device nodes, driver mounts and hooks; the management spec; and our hook-free
mode (libraries mounted under their SONAMEs into one directory plus ``LD_LIBRARY_PATH``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_operator.gpu.records import GpuInfo, MigDevice
from gpu_operator.names import MANAGEMENT_CDI_KIND
from gpu_operator.toolkit.driver_tree import DriverTree

CDI_VERSION = "0.5.0"
MOUNT_OPTIONS = ["ro", "nosuid", "nodev", "rbind", "rprivate"]
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
HOOK_FREE_DIR = "/usr/lib/nvidia-cdi"
NAME_STRATEGIES = ("index", "uuid", "type-index")


@dataclass(frozen=True)
class CdiOptions:
    vendor: str = "nvidia.com"
    device_class: str = "gpu"
    name_strategies: tuple[str, ...] = ("index", "uuid")
    hook_path: str = "/usr/bin/nvidia-cdi-hook"
    hooks: bool = True
    """False: the hook-free mode (no ``nvidia-cdi-hook`` on the host)."""
    all_device: bool = True
    dev_root: str = "/"
    modeset: bool = True
    """Whether ``/dev/nvidia-modeset`` exists on the node."""

    @property
    def kind(self) -> str:
        return f"{self.vendor}/{self.device_class}"


def mig_cap_minor(gpu_minor: int, gi: int, ci: int | None = None) -> int:
    """``/proc/driver/nvidia-caps/mig-minors``: after ``config 1`` and ``monitor 2``, each GPU
    has 15 GIs × (the GI's access + 8 CIs' access) minors, numbered from 3."""
    base = 3 + gpu_minor * 15 * 9 + gi * 9
    return base if ci is None else base + 1 + ci


def parse_mig_minors(text: str) -> dict[str, int]:
    minors = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            minors[parts[0]] = int(parts[1])
    return minors


def _dev(options: CdiOptions, path: str) -> dict[str, Any]:
    host = path if options.dev_root in ("", "/") else f"{options.dev_root.rstrip('/')}{path}"
    node: dict[str, Any] = {"path": path}
    if host != path:
        node["hostPath"] = host
    return node


def _gpu_names(gpu: GpuInfo, strategies: Sequence[str]) -> list[str]:
    names = {"index": str(gpu.index), "uuid": gpu.uuid, "type-index": f"gpu{gpu.index}"}
    return [names[s] for s in strategies]


def _mig_names(mig: MigDevice, strategies: Sequence[str]) -> list[str]:
    names = {
        "index": f"{mig.parent_index}:{mig.index}",
        "uuid": mig.uuid,
        "type-index": f"mig{mig.parent_index}:{mig.index}",
    }
    return [names[s] for s in strategies]


def _mig_nodes(gpu: GpuInfo, mig: MigDevice, minors: Mapping[str, int] | None) -> list[str]:
    gi_key = f"gpu{gpu.minor_number}/gi{mig.gpu_instance_id}/access"
    ci_key = f"gpu{gpu.minor_number}/gi{mig.gpu_instance_id}/ci{mig.compute_instance_id}/access"
    if minors is not None and gi_key in minors and ci_key in minors:
        gi_minor, ci_minor = minors[gi_key], minors[ci_key]
    else:
        gi_minor = mig_cap_minor(gpu.minor_number, mig.gpu_instance_id)
        ci_minor = mig_cap_minor(gpu.minor_number, mig.gpu_instance_id, mig.compute_instance_id)
    return [
        f"/dev/nvidia{gpu.minor_number}",
        f"/dev/nvidia-caps/nvidia-cap{gi_minor}",
        f"/dev/nvidia-caps/nvidia-cap{ci_minor}",
    ]


def _hook(options: CdiOptions, *args: str) -> dict[str, Any]:
    return {
        "hookName": "createContainer",
        "path": options.hook_path,
        "args": ["nvidia-cdi-hook", *args],
        "env": ["NVIDIA_CTK_DEBUG=false"],
    }


def _mount(host: str, container: str | None = None) -> dict[str, Any]:
    return {"hostPath": host, "containerPath": container or host, "options": MOUNT_OPTIONS}


def _strip_root(path: str, root: Path) -> str:
    if str(root) in ("", "/") or not path.startswith(str(root)):
        return path
    return "/" + path[len(str(root)) :].lstrip("/")


def common_edits(tree: DriverTree, options: CdiOptions) -> dict[str, Any]:
    """The edits every device of the spec shares: control nodes, driver files, hooks, env."""
    nodes = list(CONTROL_NODES) + (["/dev/nvidia-modeset"] if options.modeset else [])
    libcuda = next((lib for lib in tree.libraries if lib.soname == "libcuda.so.1"), None)
    lib_dir = _strip_root(str(Path(libcuda.path).parent), tree.host_prefix) if libcuda else None
    env = ["NVIDIA_VISIBLE_DEVICES=void"]
    mounts: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    if options.hooks:
        if lib_dir:
            env.append(f"NVIDIA_CTK_LIBCUDA_DIR={lib_dir}")
        mounts += [
            _mount(lib.path, _strip_root(lib.path, tree.host_prefix)) for lib in tree.libraries
        ]
    else:
        env.append(f"LD_LIBRARY_PATH={HOOK_FREE_DIR}")
        for lib in tree.libraries:
            mounts.append(_mount(lib.path, f"{HOOK_FREE_DIR}/{lib.soname}"))
            if lib.soname == "libcuda.so.1":
                mounts.append(_mount(lib.path, f"{HOOK_FREE_DIR}/libcuda.so"))
    mounts += [_mount(p, _strip_root(p, tree.host_prefix)) for p in tree.binaries + tree.firmware]
    mounts += [_mount(p, _strip_root(p, tree.host_prefix)) for p in tree.sockets]
    if options.hooks and tree.libraries:
        if libcuda and lib_dir:
            hooks.append(
                _hook(options, "create-symlinks", "--link", f"libcuda.so.1::{lib_dir}/libcuda.so")
            )
        hooks.append(_hook(options, "enable-cuda-compat", f"--host-driver-version={tree.version}"))
        folders = sorted({_strip_root(d, tree.host_prefix) for d in tree.lib_dirs})
        hooks.append(
            _hook(options, "update-ldcache", *[a for d in folders for a in ("--folder", d)])
        )
    if options.hooks:
        hooks.append(_hook(options, "disable-device-node-modification"))
    edits: dict[str, Any] = {"env": env, "deviceNodes": [_dev(options, n) for n in nodes]}
    if mounts:
        edits["mounts"] = mounts
    if hooks:
        edits["hooks"] = hooks
    return edits


def generate(
    gpus: Sequence[GpuInfo],
    migs: Mapping[int, Sequence[MigDevice]],
    tree: DriverTree,
    options: CdiOptions = CdiOptions(),
    *,
    mig_minors: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The ``nvidia.com/gpu`` spec for a node."""
    devices: list[dict[str, Any]] = []
    every_node: list[str] = []

    def add(names: Iterable[str], nodes: list[str]) -> None:
        for name in names:
            devices.append(
                {"name": name, "containerEdits": {"deviceNodes": [_dev(options, n) for n in nodes]}}
            )
        every_node.extend(n for n in nodes if n not in every_node)

    for gpu in gpus:
        add(_gpu_names(gpu, options.name_strategies), [f"/dev/nvidia{gpu.minor_number}"])
    for gpu in gpus:
        for mig in migs.get(gpu.index, ()):
            add(_mig_names(mig, options.name_strategies), _mig_nodes(gpu, mig, mig_minors))
    if options.all_device and devices:
        devices.append(
            {
                "name": "all",
                "containerEdits": {"deviceNodes": [_dev(options, n) for n in every_node]},
            }
        )
    return {
        "cdiVersion": CDI_VERSION,
        "kind": options.kind,
        "devices": devices,
        "containerEdits": common_edits(tree, options),
    }


def management_spec(
    tree: DriverTree, dev_nodes: Sequence[str], options: CdiOptions
) -> dict[str, Any]:
    """``management.nvidia.com/gpu``: one device ``all`` with every NVIDIA device node (what
    the toolkit container and the validator use)."""
    nodes = sorted(set(dev_nodes) | set(CONTROL_NODES))
    return {
        "cdiVersion": CDI_VERSION,
        "kind": MANAGEMENT_CDI_KIND,
        "devices": [
            {"name": "all", "containerEdits": {"deviceNodes": [_dev(options, n) for n in nodes]}}
        ],
        "containerEdits": common_edits(tree, options),
    }


def spec_file_name(kind: str, fmt: str = "yaml") -> str:
    """``nvidia.com/gpu`` → ``nvidia.com-gpu.yaml`` (the CDI file name convention)."""
    return f"{kind.replace('/', '-')}.{fmt}"
