"""Simulated nodes: parse ``--nodes dgx-a100:2,h200:1`` and ``--os rocky:8.5``, lay out each
node's root directory (its ``/etc/os-release``, containerd config, kubelet directories, the
simulated GPUs' state) and build the Node object a kubelet would register: capacity,
allocatable, a complete ``status.nodeInfo``, conditions, and the NFD labels a real node with
NVIDIA PCI devices would carry."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.fake.presets import parse_layout
from gpu_operator.gpu.fake.state import StateStore, initial_state, seed_for
from gpu_operator.names import NFD_PREFIX

CONTROL_PLANE = "sandbox-control-plane"
KUBELET_VERSION = "v1.30.4"
CONTAINERD_VERSION = "containerd://1.7.22"


@dataclass(frozen=True)
class OsImage:
    """An OS as a node reports it (``os-release``, ``nodeInfo.osImage``, kernel)."""

    id: str
    version: str
    pretty: str
    kernel: str

    def os_release(self) -> str:
        return (
            f'NAME="{self.pretty.rsplit(" ", 1)[0]}"\nID="{self.id}"\n'
            f'VERSION_ID="{self.version}"\nPRETTY_NAME="{self.pretty}"\n'
        )


OSES: dict[str, tuple[str, str]] = {
    # id → (pretty name prefix, kernel for the default version)
    "rocky": ("Rocky Linux", "4.18.0-348.el8.0.2.x86_64"),
    "rhel": ("Red Hat Enterprise Linux", "4.18.0-372.9.1.el8.x86_64"),
    "almalinux": ("AlmaLinux", "4.18.0-372.9.1.el8.x86_64"),
    "ubuntu": ("Ubuntu", "5.15.0-91-generic"),
}


def parse_os(text: str) -> OsImage:
    """``rocky:8.5`` → Rocky Linux 8.5 (ID ``rocky``, VERSION_ID ``8.5``)."""
    os_id, _, version = text.strip().lower().partition(":")
    if os_id not in OSES or not re.fullmatch(r"\d+(\.\d+)*", version):
        raise ConfigError(
            f"--os {text!r}: expected ID:VERSION with ID one of {', '.join(OSES)}, e.g. rocky:8.5"
        )
    prefix, kernel = OSES[os_id]
    suffix = " LTS" if os_id == "ubuntu" else ""
    return OsImage(os_id, version, f"{prefix} {version}{suffix}", kernel)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    preset: str
    os: OsImage
    gpus: int
    gpu_model: str


def parse_nodes(text: str, os_text: str = "rocky:8.5") -> list[NodeSpec]:
    """``dgx-a100:2,h200:1`` → gpu-node-1, gpu-node-2 (DGX A100), gpu-node-3 (H200)."""
    os_image = parse_os(os_text)
    specs: list[NodeSpec] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        preset, _, count_text = part.partition(":")
        try:
            count = int(count_text or "1")
        except ValueError:
            raise ConfigError(f"--nodes {part!r}: the count after ':' must be a number") from None
        if not 1 <= count <= 64:
            raise ConfigError(f"--nodes {part!r}: count must be 1..64")
        layout = parse_layout(preset)
        for _ in range(count):
            specs.append(
                NodeSpec(
                    f"gpu-node-{len(specs) + 1}",
                    preset,
                    os_image,
                    len(layout.models),
                    layout.models[0].name,
                )
            )
    if not specs:
        raise ConfigError("--nodes: at least one node, e.g. dgx-a100:2")
    return specs


def state_file(root: Path, preset: str) -> Path:
    """The node's simulated GPU state (what ``gpu-operator --sim <path> sim …`` changes)."""
    return root / "sim" / f"{re.sub(r'[^A-Za-z0-9.-]+', '_', preset.lower())}.state.json"


def visible_state_file(root: Path, preset: str) -> Path:
    """The same file as containers name it: through ``<root>/gpus``, a link the simulated
    driver creates when it loads, so NVML fails on the node until the driver is up."""
    return root / "gpus" / state_file(root, preset).name


CONTAINERD_CONFIG = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'


def prepare_root(root: Path, spec: NodeSpec | None) -> None:
    """The node's filesystem as the operands expect to find it on a host."""
    os_image = spec.os if spec else parse_os("rocky:8.5")
    for sub in (
        "etc/containerd",
        "run/containerd",
        "run/nvidia/validations",
        "run/nvidia/driver",
        "var/lib/kubelet/device-plugins",
        "var/lib/kubelet/pod-resources",
        "var/run/cdi",
        "etc/cdi",
        "etc/kubernetes/node-feature-discovery/features.d",
        "dev/char",
        "sys/class/dmi/id",
        "usr/local/nvidia",
        "sim",
        "pods",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(os_image.os_release())
    if spec is not None:
        store = StateStore(state_file(root, spec.preset))
        if not store.exists():
            path = state_file(root, spec.preset)
            store.create(initial_state(spec.preset, parse_layout(spec.preset), seed_for(path)))
    config = root / "etc/containerd/config.toml"
    if not config.exists():
        config.write_text(CONTAINERD_CONFIG)
    kernel = root / "proc/sys/kernel"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "osrelease").write_text(f"{os_image.kernel}\n")
    for index in range(spec.gpus if spec else 0):
        device = root / f"sys/bus/pci/devices/0000:{0x07 + index:02x}:00.0"
        device.mkdir(parents=True, exist_ok=True)
        (device / "vendor").write_text("0x10de\n")
        (device / "class").write_text("0x030200\n")
    product = "DGXA100" if spec and spec.preset == "dgx-a100" else "sandbox"
    (root / "sys/class/dmi/id/product_name").write_text(f"{product}\n")


def _labels(spec: NodeSpec | None, name: str) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    if spec is None:
        labels["node-role.kubernetes.io/control-plane"] = ""
        return labels
    nfd = NFD_PREFIX
    labels.update(
        {
            f"{nfd}pci-10de.present": "true",
            f"{nfd}system-os_release.ID": spec.os.id,
            f"{nfd}system-os_release.VERSION_ID": spec.os.version,
            f"{nfd}system-os_release.VERSION_ID.major": spec.os.version.split(".")[0],
            f"{nfd}kernel-version.full": spec.os.kernel,
            f"{nfd}kernel-version.major": spec.os.kernel.split(".")[0],
            f"{nfd}kernel-version.minor": spec.os.kernel.split(".")[1],
        }
    )
    return labels


def node_object(name: str, spec: NodeSpec | None, now: str) -> dict[str, Any]:
    """The Node a kubelet registers (``spec`` ``None``: the sandbox's control-plane node)."""
    os_image = spec.os if spec else parse_os("ubuntu:22.04")
    machine = hashlib.sha256(name.encode()).hexdigest()[:32]
    resources = {"cpu": "64", "memory": "1056763812Ki", "pods": "110", "ephemeral-storage": "1Ti"}
    condition_types = (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    )
    taints = (
        [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
        if spec is None
        else []
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": _labels(spec, name)},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": f"kubelet: {reason}",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for kind, status, reason in condition_types
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": machine,
                "systemUUID": machine,
                "bootID": machine[::-1],
                "kernelVersion": os_image.kernel,
                "osImage": os_image.pretty,
                "containerRuntimeVersion": CONTAINERD_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
