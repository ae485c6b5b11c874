"""The DRA driver on sandbox nodes, as the contract tests over the whole sandbox path start it: a
sandbox under a short /tmp directory, each node's GPUs loaded and its simulated NVML, the driver
serving on the node's kubelet directories and publishing to the sandbox's API server, and
upstream's DeviceClasses created."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpu_operator.dra.kubeapi import ClaimReader, SlicePublisher
from gpu_operator.dra.plugin import DraDriver
from gpu_operator.dra.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings
from gpu_operator.kube import KubeClient, KubeSettings, build_client
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.containers import load_gpus
from gpu_operator.sandbox.dra.classes import device_classes
from gpu_operator.sandbox.nodes import parse_nodes
from helpers.dra_driver import make_driver_root


@contextmanager
def running_sandbox(nodes: str, prefix: str) -> Iterator[Sandbox]:
    """A sandbox of ``nodes`` (``parse_nodes`` form) on Rocky 8.5, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        with Sandbox(parse_nodes(nodes, "rocky:8.5"), base, driver_delay_s=0.2) as running:
            yield running
    finally:
        shutil.rmtree(base, ignore_errors=True)


def node_hardware(sandbox: Sandbox, name: str) -> HardwareSettings:
    """The node's driver loaded (no chart installed here) and its simulated NVML."""
    node = sandbox.nodes[name]
    load_gpus(node.runner.node.base_env)
    return HardwareSettings(sim=node.runner.node.base_env["GPU_OPERATOR_SIM"])


def start_node_driver(
    sandbox: Sandbox,
    name: str,
    hardware: HardwareSettings,
    driver_root: Path,
    client: KubeClient,
    **env: str,
) -> DraDriver:
    """The DRA driver started on the node's kubelet directories, publishing through ``client``."""
    root = sandbox.nodes[name].root
    settings = resolve_settings(
        {},
        {
            "NODE_NAME": name,
            "CDI_ROOT": str(root / "etc/cdi"),
            "DRIVER_ROOT_CTR_PATH": str(driver_root),
            "KUBELET_REGISTRAR_DIRECTORY_PATH": str(root / "var/lib/kubelet/plugins_registry"),
            "KUBELET_PLUGINS_DIRECTORY_PATH": str(root / "var/lib/kubelet/plugins"),
            **env,
        },
    )
    driver = DraDriver(
        settings, hardware, publisher=SlicePublisher(client), claims=ClaimReader(client)
    )
    driver.start()
    return driver


@contextmanager
def node_driver(
    sandbox: Sandbox, name: str, tmp_path: Path
) -> Iterator[tuple[DraDriver, HardwareSettings]]:
    """The DRA driver started on the node (its own API client, a driver root under
    ``tmp_path``) and its NVML; stopped (claims cleaned) when the block ends."""
    hardware = node_hardware(sandbox, name)
    driver_root = make_driver_root(tmp_path / "driver", "580.159.04")
    client = build_client(KubeSettings(kubeconfig=sandbox.kubeconfig))
    running = start_node_driver(sandbox, name, hardware, driver_root, client)
    try:
        yield running, hardware
    finally:
        running.stop(clean=True)
        client.close()


def create_device_classes(sandbox: Sandbox) -> None:
    """Upstream's DeviceClasses (``gpu.nvidia.com``, ``mig.nvidia.com``) in the API server."""
    rest = sandbox.rest
    assert rest is not None
    for device_class in device_classes():
        rest.create("resource.k8s.io/v1/deviceclasses", device_class)
