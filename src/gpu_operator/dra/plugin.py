"""The DRA driver assembled: read the node's full GPUs through the NVML facade, serve the DRA
and registration sockets, watch device health, and keep the node's ResourceSlices current (at
start, on every health change, after a prepare or unprepare under dynamic MIG, and every
``resync_s`` in case they were changed or deleted behind our back — a steady node writes
nothing). ``stop(clean=True)`` deletes our slices, as a driver that is uninstalled must; a
restart (``clean=False``) leaves them for the next process.

A GPU with MIG mode on is published only with the ``DynamicMIG`` feature gate: then it is the
whole GPU plus every MIG device it could host, with its counter set (``mig_node``), and the pool
spans several slices (``slices.build_pool``); each read takes the GPUs' MIG modes as they are
then, so a mode the MIG manager changes is followed. Without the gate a GPU with MIG on at
start is left out with one log line. MIG mode is never changed here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gpu_operator.dra.cdi import claim_spec
from gpu_operator.dra.checkpoint import CHECKPOINT_FILE
from gpu_operator.dra.devices import NodeGpus, device_name, gpu_device
from gpu_operator.dra.health import DeviceHealth
from gpu_operator.dra.mig_node import MigNode, mig_enabled
from gpu_operator.dra.prepare import ClaimSource, Preparer
from gpu_operator.dra.server import DraServer
from gpu_operator.dra.servicer import DraServicer
from gpu_operator.dra.settings import DraSettings
from gpu_operator.dra.sharing import for_node
from gpu_operator.dra.slices import GpuGroup, build_pool
from gpu_operator.errors import GpuError, GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInfo, MigDevice
from gpu_operator.toolkit.cdi_generate import CdiOptions
from gpu_operator.toolkit.driver_tree import discover

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where the slice goes (``kubeapi.SlicePublisher`` against the API)."""

    def publish_pool(self, node: str, desired: list[dict[str, Any]]) -> bool: ...

    def delete_node_slices(self, node: str) -> int: ...


def read_node(hardware: HardwareSettings, *, dynamic_mig: bool = False) -> NodeGpus:
    """The driver's facts and the GPUs to publish: MIG-enabled ones only with dynamic MIG."""
    with Nvml.open(hardware) as nvml:
        system = nvml.system()
        gpus = nvml.gpus()
    for gpu in gpus:
        if mig_enabled(gpu) and not dynamic_mig:
            log.info(
                "GPU %d (%s) has MIG enabled: not published (feature gate DynamicMIG is off)",
                gpu.index,
                gpu.uuid,
            )
    return NodeGpus(
        system=system,
        gpus=tuple(g for g in gpus if not mig_enabled(g)),
        mig_gpus=tuple(g for g in gpus if mig_enabled(g)) if dynamic_mig else (),
    )


@dataclass
class _Loop:
    thread: threading.Thread
    stop: threading.Event


class DraDriver:
    def __init__(
        self,
        settings: DraSettings,
        hardware: HardwareSettings,
        *,
        publisher: Publisher,
        claims: ClaimSource,
        resync_s: float = 30.0,
        retry_s: float = 1.0,
    ):
        self.settings = settings
        self.hardware = hardware
        self.publisher = publisher
        self._claims = claims
        self._resync_s = resync_s
        self._retry_s = retry_s
        self.node: NodeGpus | None = None
        self.mig: MigNode | None = None
        self.preparer: Preparer | None = None
        self.server: DraServer | None = None
        self.health: DeviceHealth | None = None
        self.published = threading.Event()
        """Set once the slice has been published (or found already so)."""
        self._loop: _Loop | None = None
        self._generation = 1

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Read the node, serve, watch health, publish; ``ConfigError``/``GpuError`` if not."""
        settings = self.settings
        node = read_node(self.hardware, dynamic_mig=settings.dynamic_mig)
        names = node.by_name()
        mig = MigNode(self.hardware, node.system, node.all_gpus()) if settings.dynamic_mig else None
        tree = discover(
            Path(settings.container_driver_root),
            node.system.driver_version,
            host_root=Path(settings.driver_root),
        )
        options = CdiOptions(
            hook_path=settings.nvidia_cdi_hook_path,
            dev_root=settings.driver_root,
            modeset=Path(settings.container_driver_root, "dev/nvidia-modeset").exists(),
        )

        def spec(
            uid: str, gpus: Sequence[GpuInfo], migs: Sequence[tuple[str, GpuInfo, MigDevice]] = ()
        ) -> dict[str, Any]:
            return claim_spec(uid, gpus, tree, options, migs)

        preparer = Preparer(
            settings.node_name,
            names,
            cdi_root=Path(settings.cdi_root),
            checkpoint_path=settings.plugin_dir / CHECKPOINT_FILE,
            claims=self._claims,
            spec=spec,
            sharing=for_node(settings, self.hardware, names),
            mig=mig,
            on_mig_change=self._poke,
        )
        Path(settings.cdi_root).mkdir(parents=True, exist_ok=True)
        health = DeviceHealth(self.hardware, list(names.items()), settings.health)
        server = DraServer(
            Path(settings.kubelet_registrar_directory_path),
            settings.plugin_dir,
            DraServicer(preparer),
        )
        health.start()
        try:
            server.start()
        except GpuOperatorError:
            health.stop()
            raise
        self.node, self.preparer, self.server, self.health = node, preparer, server, health
        self.mig = mig
        stop = threading.Event()
        thread = threading.Thread(target=self._publish_loop, args=(stop,), name="dra-slices")
        thread.daemon = True
        self._loop = _Loop(thread, stop)
        thread.start()
        log.info(
            "DRA driver on %s: %s",
            settings.node_name,
            ", ".join(f"{n} ({g.uuid})" for n, g in names.items()) or "no GPUs",
        )
        if mig is not None:
            log.info(
                "dynamic MIG on (MIG mode on now: %s)",
                ", ".join(f"{device_name(g)} ({g.uuid})" for g in node.mig_gpus) or "none",
            )

    def stop(self, *, clean: bool = True) -> None:
        if self._loop is not None:
            self._loop.stop.set()
            if self.health is not None:
                self.health.board.wake()
            self._loop.thread.join(10)
            self._loop = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.health is not None:
            self.health.stop()
            self.health = None
        if clean:
            try:
                deleted = self.publisher.delete_node_slices(self.settings.node_name)
                log.info("deleted %d ResourceSlice(s) of this node", deleted)
            except GpuOperatorError as error:
                log.error("could not delete this node's ResourceSlices: %s", error)

    # --- the slice ----------------------------------------------------------------------

    def _poke(self) -> None:
        """Publish again now (a prepare or unprepare may have changed the MIG instances)."""
        if self.health is not None:
            self.health.board.wake()

    def groups(self) -> list[GpuGroup]:
        """Each GPU's part of the pool, by minor number. Under dynamic MIG every GPU is read
        (its MIG mode as it is now), and read again when a prepare or unprepare made or removed
        instances meanwhile, so an instance being created is never taken for a foreign one
        (and prepares never wait on a read)."""
        assert self.node is not None
        if self.mig is None:
            return [
                GpuGroup(device_name(g), (gpu_device(g, self.node.system),)) for g in self.node.gpus
            ]
        assert self.preparer is not None
        while True:
            owned, version = self.preparer.mig_snapshot()
            try:
                out = self.mig.groups(owned)
            except GpuError:  # an instance went while it was read: once that is done, again
                if self.preparer.mig_snapshot()[1] == version:
                    raise
                continue
            if self.preparer.mig_snapshot()[1] == version:
                break
        minors = {device_name(g): g.minor_number for g in self.node.all_gpus()}
        return sorted(out, key=lambda group: minors[group.gpu])

    def desired_slices(self) -> list[dict[str, Any]]:
        assert self.health is not None
        return build_pool(
            self.settings.node_name, self.groups(), self.health.taints(), self._generation
        )

    def desired_slice(self) -> dict[str, Any]:
        """The first slice of the pool (the only one without dynamic MIG)."""
        return self.desired_slices()[0]

    def _publish_loop(self, stop: threading.Event) -> None:
        assert self.health is not None
        board = self.health.board
        while not stop.is_set():
            seen = board.generation
            try:
                if self.publisher.publish_pool(self.settings.node_name, self.desired_slices()):
                    self._generation += 1
                self.published.set()
                wait = self._resync_s
            except GpuOperatorError as error:
                log.error("publishing the ResourceSlice failed (retrying): %s", error)
                wait = self._retry_s
            if stop.is_set():
                break
            board.wait_change(seen, wait)
