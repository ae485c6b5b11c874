"""Sharing a claim's GPUs as its opaque config asks (``sharing_config``), as upstream's
``TimeSlicingManager`` and ``MpsManager`` do: time-slicing sets the GPUs' compute mode to
``DEFAULT`` and their time-slice to the interval; MPS sets ``EXCLUSIVE_PROCESS`` and starts one
MPS control daemon per claim (``<plugins>/gpu.nvidia.com/mps/<claim uid>-<hash>/{pipe,shm,log}``,
upstream's layout) whose pipe and shm directories the claim's CDI devices mount, with upstream's
``CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps`` and the config's limits as the clients' variables.
Unprepare stops the daemon and puts the defaults back on GPUs no other prepared claim holds.

What was applied is kept in ``<plugins>/gpu.nvidia.com/sharing.json`` (claim UID → groups), so
a restarted driver still undoes it and writes the same CDI edits. A claim without a config of
ours changes nothing on its GPUs (upstream, with its ``TimeSlicingSettings`` gate on, sets the
``Default`` time-slice on every prepared GPU).

The daemon itself is behind ``MpsControl``: ``ProcessMpsControl`` runs the driver's
``nvidia-cuda-mps-control`` (real GPUs); ``SimulatedMpsControl`` (simulated node) only lays out
the directories, a ``control`` FIFO and a log of what it would have run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gpu_operator.dra.claims import ClaimError, ClaimRef
from gpu_operator.dra.settings import DraSettings
from gpu_operator.dra.sharing_config import (
    INTERVALS,
    MPS,
    TIME_SLICING,
    ConfigProblem,
    Group,
    daemon_id,
    groups,
    pinned_limits,
)
from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu import compute_policy as policy
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.toolkit.host_files import write_atomically

log = logging.getLogger(__name__)
STATE_FILE = "sharing.json"
MPS_DIR = "mps"
MPS_PIPE_IN_CONTAINER = "/tmp/nvidia-mps"
SHM_IN_CONTAINER = "/dev/shm"
MOUNT_OPTIONS = ["rw", "nosuid", "nodev", "bind"]


@dataclass
class MpsDaemon:
    id: str
    root: str
    uuids: list[str]
    active_thread_percentage: int | None = None
    pinned_limits: dict[str, str] = field(default_factory=dict)
    """UUID → ``<MiB>M``."""

    @property
    def pipe_dir(self) -> Path:
        return Path(self.root, "pipe")

    @property
    def shm_dir(self) -> Path:
        return Path(self.root, "shm")

    @property
    def log_dir(self) -> Path:
        return Path(self.root, "log")

    def commands(self) -> list[str]:
        """What upstream's daemon pod pipes into ``nvidia-cuda-mps-control`` after ``-d``."""
        out = []
        if self.active_thread_percentage is not None:
            out.append(f"set_default_active_thread_percentage {self.active_thread_percentage}")
        out += [
            f"set_default_device_pinned_mem_limit {u} {m}" for u, m in self.pinned_limits.items()
        ]
        return out


@dataclass
class Applied:
    """One group of a claim as applied: its strategy and interval, the GPUs (device names,
    indexes, UUIDs) and the MPS daemon."""

    strategy: str
    interval: str
    devices: list[str]
    indexes: list[int]
    mps: MpsDaemon | None = None


class MpsControl(Protocol):
    def start(self, daemon: MpsDaemon) -> None: ...

    def stop(self, daemon: MpsDaemon) -> None: ...

    def running(self, daemon: MpsDaemon) -> bool: ...


def _layout(daemon: MpsDaemon) -> None:
    for path in (daemon.pipe_dir, daemon.shm_dir, daemon.log_dir):
        path.mkdir(parents=True, exist_ok=True)


class SimulatedMpsControl:
    """A simulated node has no MPS: the directories, a ``control`` FIFO in the pipe
    directory (where the real daemon makes its pipe) and ``log/control.log`` saying what would
    have run."""

    def start(self, daemon: MpsDaemon) -> None:
        _layout(daemon)
        fifo = daemon.pipe_dir / "control"
        if not fifo.exists():
            os.mkfifo(fifo)
        lines = [
            f"simulated: CUDA_VISIBLE_DEVICES={','.join(daemon.uuids)} nvidia-cuda-mps-control -d",
            *(f"simulated: echo {c} | nvidia-cuda-mps-control" for c in daemon.commands()),
        ]
        (daemon.log_dir / "control.log").write_text("\n".join(lines) + "\n")

    def stop(self, daemon: MpsDaemon) -> None:
        shutil.rmtree(daemon.root, ignore_errors=True)

    def running(self, daemon: MpsDaemon) -> bool:
        return (daemon.pipe_dir / "control").exists()


class ProcessMpsControl:
    """The driver's ``nvidia-cuda-mps-control`` run by the plugin (upstream runs the same
    commands in a Deployment per claim): ``-d`` with the claim's GPUs, pipe and log
    directories, then the config's defaults through the control pipe; ``quit`` to stop."""

    def __init__(self, control: Path, env: Mapping[str, str]):
        self.control = control
        self.env = dict(env)

    def _env(self, daemon: MpsDaemon) -> dict[str, str]:
        return {
            **self.env,
            "CUDA_VISIBLE_DEVICES": ",".join(daemon.uuids),
            "CUDA_MPS_PIPE_DIRECTORY": str(daemon.pipe_dir),
            "CUDA_MPS_LOG_DIRECTORY": str(daemon.log_dir),
        }

    def _run(self, daemon: MpsDaemon, args: list[str], stdin: str | None = None) -> None:
        argv = [str(self.control), *args]
        try:
            done = subprocess.run(
                argv, input=stdin or "", env=self._env(daemon), capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise GpuOperatorError(f"MPS control daemon {daemon.id}: {argv[0]}: {error}") from error
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip()
            what = " ".join(args) or (stdin or "").strip()
            raise GpuOperatorError(
                f"MPS control daemon {daemon.id}: {what}: exit {done.returncode}"
                + (f": {said}" if said else "")
            )

    def start(self, daemon: MpsDaemon) -> None:
        _layout(daemon)
        self._run(daemon, ["-d"])
        for command in daemon.commands():
            self._run(daemon, [], command + "\n")

    def running(self, daemon: MpsDaemon) -> bool:
        """Whether a daemon answers on the claim's pipe (``get_server_list``)."""
        try:
            self._run(daemon, [], "get_server_list\n")
        except GpuOperatorError:
            return False
        return True

    def stop(self, daemon: MpsDaemon) -> None:
        if daemon.pipe_dir.exists():
            try:
                self._run(daemon, [], "quit\n")
            except GpuOperatorError as error:
                log.warning("%s (removing its directories anyway)", error)
        shutil.rmtree(daemon.root, ignore_errors=True)


def _find(root: Path, patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
    return None


def for_driver_root(
    hardware: HardwareSettings, container_root: Path
) -> tuple[MpsControl | None, list[str], dict[str, str]]:
    """The MPS control and the ``nvidia-smi`` argv and environment for a node's driver under
    ``container_root`` (upstream: ``nvidia-smi`` of the driver root with its
    ``libnvidia-ml.so.1`` in ``LD_PRELOAD``). ``None`` control: the driver has no
    ``nvidia-cuda-mps-control`` (an MPS claim is refused saying so)."""
    if hardware.simulated:
        return SimulatedMpsControl(), ["nvidia-smi"], {}
    libs = (
        "usr/lib64",
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "usr/lib",
        "lib64",
    )
    nvml = _find(container_root, [f"{d}/libnvidia-ml.so.1" for d in libs])
    env = dict(os.environ)
    if nvml is not None:
        env["LD_PRELOAD"] = ":".join(p for p in (str(nvml), env.get("LD_PRELOAD", "")) if p)
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in (str(nvml.parent), env.get("LD_LIBRARY_PATH", "")) if p
        )
    bins = ("usr/bin", "bin", "usr/local/bin")
    smi = _find(container_root, [f"{d}/nvidia-smi" for d in bins])
    control = _find(container_root, [f"{d}/nvidia-cuda-mps-control" for d in bins])
    mps = ProcessMpsControl(control, env) if control is not None else None
    return mps, [str(smi) if smi else "nvidia-smi"], env


class SharingManager:
    def __init__(
        self,
        hardware: HardwareSettings,
        plugin_dir: Path,
        gpus: Mapping[str, GpuInfo],
        *,
        mps: MpsControl | None,
        nvidia_smi: Sequence[str] = ("nvidia-smi",),
        smi_env: Mapping[str, str] | None = None,
    ):
        self.hardware = hardware
        self.plugin_dir = plugin_dir
        self.gpus = dict(gpus)
        self.mps = mps
        self.nvidia_smi = list(nvidia_smi)
        self.smi_env = dict(smi_env) if smi_env is not None else None
        self.state_path = plugin_dir / STATE_FILE
        self.applied = self._load()
        """Claim UID → what was applied for it."""

    # --- state --------------------------------------------------------------------------

    def _load(self) -> dict[str, list[Applied]]:
        try:
            body = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{self.state_path}: cannot read the sharing state: {error}"
            ) from error
        try:
            return {
                uid: [
                    Applied(
                        g["strategy"], g["interval"], list(g["devices"]), list(g["indexes"]),
                        MpsDaemon(**g["mps"]) if g.get("mps") else None,
                    )
                    for g in groups_
                ]
                for uid, groups_ in body.items()
            }  # fmt: skip
        except (KeyError, TypeError, AttributeError) as error:
            raise ConfigError(f"{self.state_path}: not a sharing state: {error}") from error

    def _save(self) -> None:
        body = {uid: [asdict(a) for a in groups_] for uid, groups_ in sorted(self.applied.items())}
        write_atomically(self.state_path, json.dumps(body, indent=2) + "\n")

    def resume(self) -> None:
        """Start again the MPS daemons of prepared claims that no longer run (they ran in the
        plugin's container, gone with its last process); a failure is logged, the claim's
        clients then fail as they would without their daemon."""
        for uid, plan in self.applied.items():
            for group in plan:
                if group.mps is None or self.mps is None or self.mps.running(group.mps):
                    continue
                try:
                    self.mps.start(group.mps)
                    log.info("MPS control daemon %s of claim %s started again", group.mps.id, uid)
                except (GpuOperatorError, OSError) as error:
                    log.error(
                        "claim %s: starting its MPS control daemon again failed: %s", uid, error
                    )

    # --- prepare ------------------------------------------------------------------------

    def plan(
        self, ref: ClaimRef, claim: Mapping[str, Any] | None, results: Sequence[tuple[str, str]]
    ) -> list[Applied]:
        """What the claim's configs ask of its devices (``results``: (request, device)),
        decoded and checked; ``ClaimError`` naming the config field when one is wrong."""
        allocation = ((claim or {}).get("status") or {}).get("allocation") or {}
        kinds = dict.fromkeys(self.gpus, "gpu")
        out = []
        for group in groups(ref, allocation, results, kinds):
            applied = self._plan_group(ref, group)
            if applied is not None:
                out.append(applied)
        return out

    def _plan_group(self, ref: ClaimRef, group: Group) -> Applied | None:
        sharing = group.sharing
        if sharing.where == "default":
            return None  # no config of ours: the GPUs are left as they are
        if any(d not in self.gpus for d in group.devices):
            if sharing.strategy == MPS:  # as upstream with dynamic MIG
                raise ClaimError(
                    f"ResourceClaim {ref}: {sharing.where}: MPS is not supported on MIG devices yet"
                )
            return None  # time-slicing a MIG device has no setting to change
        gpus = [self.gpus[d] for d in group.devices]
        indexes = [g.index for g in gpus]
        if sharing.strategy == TIME_SLICING:
            return Applied(TIME_SLICING, sharing.interval, list(group.devices), indexes)
        assert sharing.strategy == MPS
        assert sharing.mps is not None
        if self.mps is None:
            raise ClaimError(
                f"ResourceClaim {ref}: {sharing.where}: MPS asked, but the driver has no "
                "nvidia-cuda-mps-control"
            )
        uuids = [g.uuid for g in gpus]
        try:
            limits = pinned_limits(sharing.mps, uuids, sharing.where)
        except ConfigProblem as problem:
            raise ClaimError(f"ResourceClaim {ref}: {problem}") from problem
        ident = daemon_id(ref.uid, uuids)
        daemon = MpsDaemon(
            id=ident,
            root=str(self.plugin_dir / MPS_DIR / ident),
            uuids=uuids,
            active_thread_percentage=sharing.mps.active_thread_percentage,
            pinned_limits=limits,
        )
        return Applied(MPS, "", list(group.devices), indexes, daemon)

    def apply(self, claim_uid: str, plan: list[Applied]) -> None:
        """Apply ``plan`` and remember it; what was done is undone when a step fails."""
        if not plan:
            return
        done: list[Applied] = []
        try:
            with Nvml.open(self.hardware) as nvml:
                for group in plan:
                    done.append(group)
                    self._apply(nvml, group)
            self.applied[claim_uid] = plan
            self._save()
        except (GpuOperatorError, OSError) as error:
            self.applied.pop(claim_uid, None)
            try:
                self._undo(done, set())
            except (GpuOperatorError, OSError) as undo:
                log.error("undoing the sharing of claim %s failed too: %s", claim_uid, undo)
            if isinstance(error, OSError):
                raise GpuOperatorError(f"{self.state_path}: {error.strerror or error}") from error
            raise

    def _apply(self, nvml: Nvml, group: Applied) -> None:
        if group.strategy == TIME_SLICING:
            for index in group.indexes:
                policy.set_compute_mode(nvml, index, "DEFAULT")
                policy.set_timeslice(
                    nvml, index, INTERVALS[group.interval], nvidia_smi=self.nvidia_smi,
                    env=self.smi_env,
                )  # fmt: skip
            log.info("time-slice %s on GPUs %s", group.interval, group.indexes)
            return
        assert group.mps is not None
        assert self.mps is not None
        for index in group.indexes:
            policy.set_compute_mode(nvml, index, "EXCLUSIVE_PROCESS")
        self.mps.start(group.mps)
        log.info("MPS control daemon %s started on GPUs %s", group.mps.id, group.indexes)

    # --- CDI edits ----------------------------------------------------------------------

    def edit_spec(self, claim_uid: str, spec: dict[str, Any]) -> None:
        """Add the claim's MPS edits to its CDI devices (upstream's
        ``GetCDIContainerEdits``, plus the config's limits as the clients' variables)."""
        for group in self.applied.get(claim_uid, []):
            if group.mps is None:
                continue
            edits = mps_edits(group.mps)
            names = {f"{claim_uid}-{d}" for d in group.devices}
            for device in spec.get("devices") or []:
                if device.get("name") in names:
                    container = device.setdefault("containerEdits", {})
                    container["env"] = [*(container.get("env") or []), *edits["env"]]
                    container["mounts"] = [*(container.get("mounts") or []), *edits["mounts"]]

    def wrap_spec(self, build: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        """``build`` (the Preparer's spec builder) with ``edit_spec`` applied to what it
        builds."""

        def built(claim_uid: str, *args: Any) -> dict[str, Any]:
            spec = build(claim_uid, *args)
            self.edit_spec(claim_uid, spec)
            return spec

        return built

    # --- unprepare ----------------------------------------------------------------------

    def try_release(self, ref: ClaimRef, in_use: Collection[str]) -> str:
        """``release``, as the claim's error line (``""``: done)."""
        try:
            self.release(ref.uid, in_use)
        except (GpuOperatorError, OSError) as error:
            log.warning("unprepare %s (%s): %s", ref, ref.uid, error)
            return f"ResourceClaim {ref}: {error}"
        return ""

    def release(self, claim_uid: str, in_use: Collection[str]) -> None:
        """Undo what was applied for the claim; GPUs in ``in_use`` (device names other
        prepared claims hold) keep their settings."""
        plan = self.applied.get(claim_uid)
        if not plan:
            return
        self._undo(plan, set(in_use))
        del self.applied[claim_uid]
        self._save()

    def _undo(self, plan: Sequence[Applied], in_use: set[str]) -> None:
        with Nvml.open(self.hardware) as nvml:
            for group in plan:
                if group.mps is not None and self.mps is not None:
                    self.mps.stop(group.mps)
                    log.info("MPS control daemon %s stopped", group.mps.id)
                for device, index in zip(group.devices, group.indexes, strict=False):
                    if device in in_use:
                        continue
                    policy.set_compute_mode(nvml, index, "DEFAULT")
                    if group.strategy == TIME_SLICING:
                        policy.set_timeslice(
                            nvml, index, policy.DEFAULT_TIMESLICE, nvidia_smi=self.nvidia_smi,
                            env=self.smi_env,
                        )  # fmt: skip


def mps_edits(daemon: MpsDaemon) -> dict[str, list[Any]]:
    """The container edits of an MPS claim's devices: upstream's pipe variable and the pipe
    and shm mounts, and the config's defaults as the client variables CUDA reads
    (``CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`` by device ordinal in the claim's order)."""
    env = [f"CUDA_MPS_PIPE_DIRECTORY={MPS_PIPE_IN_CONTAINER}"]
    if daemon.active_thread_percentage is not None:
        env.append(f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={daemon.active_thread_percentage}")
    limits = [
        f"{i}={daemon.pinned_limits[u]}"
        for i, u in enumerate(daemon.uuids)
        if u in daemon.pinned_limits
    ]
    if limits:
        env.append(f"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT={','.join(limits)}")
    mounts = [
        {
            "hostPath": str(daemon.shm_dir),
            "containerPath": SHM_IN_CONTAINER,
            "options": MOUNT_OPTIONS,
        },
        {
            "hostPath": str(daemon.pipe_dir),
            "containerPath": MPS_PIPE_IN_CONTAINER,
            "options": MOUNT_OPTIONS,
        },
    ]
    return {"env": env, "mounts": mounts}


def for_node(
    settings: DraSettings, hardware: HardwareSettings, gpus: Mapping[str, GpuInfo]
) -> SharingManager:
    """The driver's sharing manager for this node's driver root and plugin directory, the
    MPS daemons of claims prepared before a restart running again."""
    mps, smi, env = for_driver_root(hardware, Path(settings.container_driver_root))
    manager = SharingManager(
        hardware, settings.plugin_dir, gpus, mps=mps, nvidia_smi=smi, smi_env=env
    )
    manager.resume()
    return manager
