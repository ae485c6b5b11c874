"""From a pod spec to local processes: what each container runs (argv, env), which image
behaviour it gets (our image runs for real; NVIDIA's driver and DCGM host engine are simulated;
an image missing from the sandbox's catalogue can't be pulled), and the mount table that
``gpu_operator.hostpaths`` reads, with every volume placed under the node's own root. Pure,
except for writing ConfigMap volumes' files."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gpu_operator import __version__
from gpu_operator.executables import DEFAULT_ENV, EXECUTABLES
from gpu_operator.hostpaths import MOUNTS_ENV
from gpu_operator.listening import POD_IP_ENV, POD_PORTS_ENV
from gpu_operator.sandbox.network import machine_ports
from gpu_operator.sandbox.upstream_images import (
    UPSTREAM_IMAGES,
    Unplayable,
    entry_argv,
    image_name,
    remap_script,
)

Obj = dict[str, Any]
Behaviour = Literal["run", "driver", "dcgm", "workload", "missing", "unplayable"]

DEFAULT_CATALOGUE = (
    f"*gpu-operator/gpu-operator:v{__version__}",
    "*/driver:*",
    "*/dcgm:*",
    "*/cuda:*",
    *(f"*/{name}:*" for name in UPSTREAM_IMAGES),
    "busybox*",
)
"""Our image at our version (no other tag of ours exists), and NVIDIA's operand images."""


@dataclass(frozen=True)
class ImageCatalogue:
    """Which images the sandbox's "registry" has (globs), and how each is run."""

    present: tuple[str, ...] = DEFAULT_CATALOGUE
    missing: tuple[str, ...] = ()
    """Globs that never pull, even where ``present`` matches (to stage ImagePullBackOff)."""

    def behaviour(self, image: str) -> Behaviour:
        if any(fnmatch.fnmatch(image, g) for g in self.missing) or not any(
            fnmatch.fnmatch(image, g) for g in self.present
        ):
            return "missing"
        name = image_name(image)
        if name == "gpu-operator" or name in UPSTREAM_IMAGES:
            return "run"
        if name == "driver":
            return "driver"
        if name == "dcgm":
            return "dcgm"
        return "workload"


@dataclass
class ProcessSpec:
    name: str
    image: str
    behaviour: Behaviour
    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, str] = field(default_factory=dict)
    crash: str = ""
    """Why an ``unplayable`` container exits at once (its image lacks the entry point)."""


def bin_dir() -> Path:
    return Path(sys.executable).parent


def command_argv(command: list[str], args: list[str]) -> list[str]:
    """Our image's entry points as local commands: upstream executable names go straight to
    their ``gpu-operator`` subcommand (one interpreter start instead of two)."""
    argv = [*command, *args]
    if not argv:
        return [str(bin_dir() / "gpu-operator"), "operator"]
    head = argv[0]
    if head in EXECUTABLES:
        return [str(bin_dir() / "gpu-operator"), *EXECUTABLES[head], *argv[1:]]
    if head == "gpu-operator":
        return [str(bin_dir() / "gpu-operator"), *argv[1:]]
    return argv


def _field(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    values = {
        "spec.nodeName": spec.get("nodeName", ""),
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP") or "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    return str(values.get(path, ""))


ConfigMaps = Callable[[str, str], Mapping[str, str] | None]
"""(namespace, name) → the ConfigMap's data, or ``None`` when it doesn't exist."""


_LISTEN = re.compile(r"^(?:0\.0\.0\.0|\[::\])?:(\d+)$")


def bind_to(value: str, pod_ip: str, ports: Mapping[int, int] | None = None) -> str:
    """A pod has its own network namespace; local processes share one. So a listen address
    for every interface (``:9400``, ``0.0.0.0:9400``, ``[::]:9400``) becomes the pod's own
    loopback address (``127.1.2.3:9400``), and two nodes' exporters don't fight over one port.
    A port the sandbox had to remap (``ports``: container port → the machine's) is the
    machine's. A listener whose address is a default, or only a port (``METRICS_PORT``), gets
    them from ``GPU_OPERATOR_POD_IP``/``GPU_OPERATOR_POD_PORTS`` (``gpu_operator.listening``)."""
    match = _LISTEN.match(value)
    if not match:
        return value
    port = int(match.group(1))
    return f"{pod_ip}:{(ports or {}).get(port, port)}"


def bind_args(argv: list[str], pod_ip: str, ports: Mapping[int, int] | None = None) -> list[str]:
    """:func:`bind_to` for a command line: a listen address for every interface as an
    argument (``-a :9400``) or a flag's value (``--metrics-bind-address=:8080``)."""
    bound = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if sep and flag.startswith("-"):
            bound.append(f"{flag}={bind_to(value, pod_ip, ports)}")
        else:
            bound.append(bind_to(arg, pod_ip, ports))
    return bound


def container_env(pod: Obj, container: Obj, config_maps: ConfigMaps) -> dict[str, str]:
    namespace = pod.get("metadata", {}).get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref:
            env.update(config_maps(namespace, ref["name"]) or {})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom") or {}
        if "fieldRef" in ref:
            env[item["name"]] = _field(pod, ref["fieldRef"].get("fieldPath", ""))
        elif "configMapKeyRef" in ref:
            data = config_maps(namespace, ref["configMapKeyRef"]["name"]) or {}
            env[item["name"]] = data.get(ref["configMapKeyRef"]["key"], "")
        else:
            env[item["name"]] = ""
    # Kubernetes' $(VAR) expansion in env values.
    for key, value in env.items():
        if "$(" in value:
            for other, replacement in env.items():
                value = value.replace(f"$({other})", replacement)
            env[key] = value
    return env


def volume_paths(
    pod: Obj, node_root: Path, pod_dir: Path, config_maps: ConfigMaps
) -> dict[str, Path]:
    """Volume name → local directory (or file); ConfigMap volumes are written out."""
    namespace = pod.get("metadata", {}).get("namespace", "default")
    paths: dict[str, Path] = {}
    for volume in pod.get("spec", {}).get("volumes") or []:
        name = volume["name"]
        if "hostPath" in volume:
            host = volume["hostPath"]["path"].strip("/")
            local = node_root / host if host else node_root
            is_dir = volume["hostPath"].get("type") in ("DirectoryOrCreate", "Directory", None, "")
            if is_dir and not local.exists() and not Path(host).suffix:
                local.mkdir(parents=True, exist_ok=True)
            paths[name] = local
            continue
        local = pod_dir / "volumes" / name
        local.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            data = config_maps(namespace, volume["configMap"]["name"]) or {}
            items = volume["configMap"].get("items")
            pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
            for key, rel in pairs:
                if key in data:
                    target = local / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(data[key])
        paths[name] = local
    return paths


def process_spec(
    pod: Obj,
    container: Obj,
    *,
    node_root: Path,
    pod_dir: Path,
    volumes: Mapping[str, Path],
    config_maps: ConfigMaps,
    catalogue: ImageCatalogue,
    base_env: Mapping[str, str],
) -> ProcessSpec:
    image = container.get("image", "")
    behaviour = catalogue.behaviour(image)
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        local = volumes.get(mount["name"])
        if local is None:
            continue
        if mount.get("subPath"):
            local = local / mount["subPath"]
        mounts[mount["mountPath"].rstrip("/") or "/"] = str(local)
    # Every container on a node shares the node's kernel and sysfs, mounted or not.
    mounts.setdefault("/sys", str(node_root / "sys"))
    mounts.setdefault("/proc/sys/kernel", str(node_root / "proc/sys/kernel"))
    # What the nvidia runtime would make visible in a GPU container (the validator's toolkit
    # check looks for the CDI specs the toolkit wrote on the host).
    for cdi in ("/etc/cdi", "/var/run/cdi"):
        mounts.setdefault(cdi, str(node_root / cdi.lstrip("/")))
    env = {**base_env, **container_env(pod, container, config_maps)}
    if env.get("KUBECONFIG") == "" and base_env.get("KUBECONFIG"):
        env["KUBECONFIG"] = base_env["KUBECONFIG"]  # "" means in-cluster: the sandbox's API
    pod_ip = (pod.get("status") or {}).get("podIP") or ""
    ports: dict[int, int] = {}
    if pod_ip:
        ports = machine_ports(pod_ip, container)
        env = {k: bind_to(v, pod_ip, ports) for k, v in env.items()}
        env[POD_IP_ENV] = pod_ip  # "every interface" is the pod's own address
        if ports:
            env[POD_PORTS_ENV] = json.dumps({str(k): v for k, v in ports.items()})
    env[MOUNTS_ENV] = json.dumps(mounts, sort_keys=True)
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    crash = ""
    if behaviour == "run" and image_name(image) in UPSTREAM_IMAGES:
        played = entry_argv(image, command, args)
        if isinstance(played, Unplayable):
            behaviour, crash = "unplayable", played.message
        else:
            command, args = played[:1], played[1:]
    for key, value in DEFAULT_ENV.get(command[0] if command else "", {}).items():
        env.setdefault(key, value)  # what the upstream-named executable adds (executables.py)
    argv = remap_script(command_argv(command, args), mounts)
    if pod_ip:
        argv = bind_args(argv, pod_ip, ports)
    return ProcessSpec(container["name"], image, behaviour, argv, env, mounts, crash)


def describe(spec: ProcessSpec) -> str:
    return f"{spec.name}: {shlex.join(spec.argv)}"


def base_environment(*, sim: Path | None, node_root: Path, kubeconfig: Path) -> dict[str, str]:
    """What every container of a simulated node gets besides its own env: the node's simulated
    GPUs, the sandbox's API server (as in-cluster config would give), a sane PATH."""
    env = {
        "PATH": f"{bin_dir()}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(node_root),
        "KUBECONFIG": str(kubeconfig),
        "PYTHONUNBUFFERED": "1",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "GPU_OPERATOR_SIM_ROOT": str(node_root / "sim"),
        # The node's container runtime, for checks that look at its configuration from a
        # container that mounts the host's / at /host (the validator's toolkit check under
        # simulation, where no runtime injects nvidia-smi). A container's own env wins.
        "RUNTIME": "containerd",
        "CONTAINERD_CONFIG": "/host/etc/containerd/config.toml",
    }
    if sim:
        env["GPU_OPERATOR_SIM"] = str(sim)
    return env
