"""One container of a simulated pod: a local process for our image, a stand-in for the images
the sandbox simulates (NVIDIA's driver "loads" after a delay and writes ``.driver-ctr-ready``,
the DCGM host engine just runs, a workload image runs a CUDA process on each GPU device it was
given), or nothing at all for an image the catalogue lacks (``ImagePullBackOff``). Tracks what
a kubelet reports: state, restarts, ready."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpu_operator.errors import GpuOperatorError
from gpu_operator.hostpaths import host_path
from gpu_operator.names import DRIVER_CTR_READY_FILE
from gpu_operator.sandbox.podspec import ProcessSpec
from gpu_operator.sandbox.probes import Failure, Probes
from gpu_operator.sandbox.reaper import Reaper, default_reaper
from gpu_operator.sandbox.timestamps import rfc3339
from gpu_operator.sandbox.workloads import Held, hold_devices, release

DRIVER_READY = DRIVER_CTR_READY_FILE
DRIVER_ROOT = "/run/nvidia/driver"
STOP_GRACE_S = 5.0


def driver_version(image: str) -> str:
    """``…/driver:450.156.00-rocky8`` → ``450.156.00``."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else "550.54.15"
    return tag.split("-", 1)[0]


def load_gpus(env: dict[str, str]) -> None:
    """The node's GPUs answer NVML from now on: link ``<root>/gpus`` to the state directory."""
    sim = env.get("GPU_OPERATOR_SIM")
    if sim:
        link = Path(sim).parent
        if not link.exists():
            link.symlink_to("sim")


def install_driver_tree(root: Path, image: str) -> None:
    """What NVIDIA's driver container leaves under ``/run/nvidia/driver``: the user-space
    libraries of its version and ``nvidia-smi`` (stubs: the sandbox's GPUs answer through the
    simulated NVML), enough for the toolkit to find the driver and write its CDI spec."""
    version = driver_version(image)
    lib = root / "usr/lib64"
    lib.mkdir(parents=True, exist_ok=True)
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"):
        (lib / f"{name}.so.{version}").write_bytes(b"")
    smi = root / "usr/bin/nvidia-smi"
    smi.parent.mkdir(parents=True, exist_ok=True)
    smi.write_text('#!/bin/sh\nexec gpu-operator gpus "$@"\n')
    smi.chmod(0o755)


class Container:
    def __init__(
        self,
        spec: ProcessSpec,
        log_dir: Path,
        *,
        driver_delay_s: float = 2.0,
        devices: tuple[str, ...] = (),
        definition: Mapping[str, Any] | None = None,
    ):
        self.spec = spec
        self.definition = definition or {}
        """The pod spec's container: its probes, ``ports`` and ``lifecycle.preStop``."""
        self.probes: Probes | None = None
        self.devices = devices
        """The device ids the kubelet allocated to this container."""
        self.log_path = log_dir / f"{spec.name}.log"
        self.previous_log_path = log_dir / f"{spec.name}.previous.log"
        """The log of the run before the last restart (``kubectl logs --previous``)."""
        self.driver_delay_s = driver_delay_s
        self.restarts = 0
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.waiting_reason = "ContainerCreating"
        self.waiting_message = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaper: Reaper = default_reaper()
        self._group_live = False
        """The process group of ``_proc`` is registered with the reaper (not yet released)."""
        self._simulated = threading.Event()  # set while a simulated container "runs"
        self._loaded_at: float | None = None
        self._held: list[Held] = []

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> bool:
        """Start (or restart) the container; ``False`` when its image can't be pulled."""
        behaviour = self.spec.behaviour
        if behaviour == "missing":
            self.waiting_reason = "ImagePullBackOff"
            self.waiting_message = f'Back-off pulling image "{self.spec.image}"'
            return False
        if self.started_at is not None and self.log_path.exists():
            self.log_path.replace(self.previous_log_path)  # a restart: keep the last run's log
        self.exit_code = None
        self.waiting_reason = ""
        self.started_at = time.time()
        if behaviour == "unplayable":
            self._crash(self.spec.crash)
            return True
        if behaviour == "run":
            self.probes = Probes(self.definition, self.started_at)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                # Its own process group, the parent-death signal, the reaper's marker.
                self._proc = self._reaper.popen(
                    self.spec.argv,
                    env=self.spec.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.log_path.parent,
                )
                self._group_live = True
        else:
            if behaviour == "workload":
                self._hold_devices()
            self._simulated.set()
            if behaviour == "driver":
                self._loaded_at = self.started_at + self.driver_delay_s
        return True

    def _hold_devices(self) -> None:
        try:
            self._held = hold_devices(self.spec.env, self.devices)
        except GpuOperatorError as error:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as log:
                log.write(f"CUDA error: {error}\n")

    def _crash(self, message: str) -> None:
        """Exit at once with ``message`` in the log and the status (exit code 128, as a runtime
        that can't exec the entry point reports)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            log.write(f"sandbox: {message}\n")
        self.exit_code, self.finished_at = 128, time.time()
        self.waiting_message = message

    def poll(self) -> int | None:
        """The exit code once the container has exited; drives the simulated driver's load."""
        if self.spec.behaviour == "unplayable":
            return self.exit_code
        if self._proc is not None:
            code = self._proc.poll()
            if code is not None:
                self._release()
            if code is not None and self.exit_code is None:
                self.exit_code, self.finished_at = code, time.time()
            return code
        if self.spec.behaviour == "driver" and self._loaded_at and time.time() >= self._loaded_at:
            self._loaded_at = None
            install_driver_tree(host_path(DRIVER_ROOT, self.spec.env), self.spec.image)
            load_gpus(self.spec.env)
            ready = host_path(DRIVER_READY, self.spec.env)
            ready.parent.mkdir(parents=True, exist_ok=True)
            ready.write_text("")
        return None

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._simulated.is_set()

    @property
    def ready(self) -> bool:
        if not self.running:
            return False
        if self.spec.behaviour == "driver":
            return self._loaded_at is None
        return self.probes is None or self.probes.ready

    @property
    def started(self) -> bool:
        return self.running and (self.probes is None or self.probes.started)

    def probe(self, now: float, host: str) -> list[Failure]:
        """Run the probes that are due; a failed startup or liveness probe at its threshold
        stops the container (the pod's restart policy then decides)."""
        if self.probes is None or not self.running:
            return []
        failures = self.probes.run(now, env=self._reaper.environ(self.spec.env), host=host)
        if failures and failures[-1].restart:
            with self.log_path.open("a") as log:
                log.write(f"kubelet: {failures[-1]}; killing the container\n")
            self.stop()
        return failures

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """The ``preStop`` exec hook, then SIGTERM to the container's process group and SIGKILL
        once ``grace_s`` (the pod's termination grace period) has passed."""
        self._simulated.clear()
        release(self.spec.env, self._held)
        if self.spec.behaviour == "driver":
            host_path(DRIVER_READY, self.spec.env).unlink(missing_ok=True)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._release()
            return
        deadline = time.monotonic() + grace_s
        self._pre_stop(grace_s)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(max(0.0, deadline - time.monotonic()))
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_GRACE_S)
        self._release()

    def _release(self) -> None:
        """The main process has ended: whatever it left in its process group goes too (a
        runtime ends the container's cgroup), and the reaper stops watching the group (once:
        the group's id may be reused later)."""
        if self._proc is not None and self._group_live:
            self._group_live = False
            self._reaper.release(self._proc)

    def _pre_stop(self, grace_s: float) -> None:
        hook = ((self.definition.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        command = list((hook or {}).get("command") or [])
        if not command:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                command,
                env=self._reaper.environ(self.spec.env),
                timeout=grace_s,
                check=False,
                capture_output=True,
            )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- what the kubelet reports -------------------------------------------------------

    def status(self, *, init: bool = False) -> dict[str, Any]:
        state: dict[str, Any]
        if self.running and self.started_at is not None:
            state = {"running": {"startedAt": rfc3339(self.started_at)}}
        elif self.exit_code is not None and (init and self.exit_code == 0):
            state = {"terminated": self._terminated("Completed")}
        elif self.waiting_reason:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        elif self.exit_code is not None:
            reason = "Completed" if self.exit_code == 0 else "Error"
            state = {"terminated": self._terminated(reason)}
        else:
            state = {"waiting": {"reason": "PodInitializing"}}
        return {
            "name": self.spec.name,
            "image": self.spec.image,
            "imageID": "" if self.spec.behaviour == "missing" else f"sandbox://{self.spec.image}",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restarts,
            "state": state,
        }

    def _terminated(self, reason: str) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code or 0,
            "reason": reason,
            "startedAt": rfc3339(self.started_at or 0),
            "finishedAt": rfc3339(self.finished_at or 0),
        }
