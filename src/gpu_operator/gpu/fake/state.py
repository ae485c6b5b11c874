"""The state of one simulated node, shared by every process that simulates it.

The state is a JSON document in a file (``<GPU_OPERATOR_SIM_ROOT>/<spec>.state.json`` or an
explicit path). Writers take an exclusive ``flock`` on ``<file>.lock``, re-read, change and
replace the file atomically (write temp, rename), so the MIG manager, the device plugin
and the exporter of one simulated node see the same hardware, as on a real node. Readers never
lock: a rename is atomic, and a reader re-parses only when the file changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.fake.catalogue import MODELS, ModelSpec
from gpu_operator.gpu.fake.presets import NodeLayout

STATE_VERSION = 1
DRIVER_VERSION = "580.159.04"
NVML_VERSION = "13.580.159.04"
CUDA_DRIVER_VERSION = 13000
MAX_EVENTS_KEPT = 1000

# Bus numbers of a DGX A100's GPUs, reused for every layout so bus ids look like real ones.
_BUS_NUMBERS = (
    0x07,
    0x0F,
    0x47,
    0x4E,
    0x87,
    0x90,
    0xB7,
    0xBD,
    0x0B,
    0x13,
    0x4B,
    0x52,
    0x8B,
    0x94,
    0xBB,
    0xC1,
)

Doc = dict[str, Any]


def stable_uuid(*parts: object) -> str:
    """A UUID derived from ``parts``: the same inputs always give the same id."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


def seed_for(path: Path) -> int:
    """Default seed: distinct per state file, so two simulated nodes never share GPU UUIDs."""
    env = os.environ.get("GPU_OPERATOR_SIM_SEED")
    if env is not None:
        try:
            return int(env)
        except ValueError as err:
            raise ConfigError(f"GPU_OPERATOR_SIM_SEED: not an integer: {env!r}") from err
    return zlib.crc32(str(path.resolve()).encode())


def initial_state(spec: str, layout: NodeLayout, seed: int, boot_time: float | None = None) -> Doc:
    """A freshly booted node: MIG disabled everywhere, no instances, no processes, no events."""
    gpus = []
    for index, model in enumerate(layout.models):
        numa = index // layout.gpus_per_numa_node if layout.gpus_per_numa_node else None
        gpus.append(
            {
                "index": index,
                "model": model.key,
                "uuid": "GPU-" + stable_uuid(seed, spec, index),
                "busId": f"00000000:{_BUS_NUMBERS[index]:02X}:00.0",
                "serial": str(1650000000000 + (zlib.crc32(f"{seed}:{index}".encode()) % 10**10)),
                "minor": index,
                "numaNode": numa,
                "pcieSwitch": index // max(layout.gpus_per_pcie_switch, 1),
                "nvlinks": layout.nvlinks_per_gpu,
                "migCurrent": 0,
                "migPending": 0,
                "lost": False,
                "gpuInstances": [],
                "processes": [],
                "counters": {
                    "pcieReplay": 0,
                    "eccSbeVolatile": 0,
                    "eccDbeVolatile": 0,
                    "eccSbeAggregate": 0,
                    "eccDbeAggregate": 0,
                    "remappedCorrectable": 0,
                    "remappedUncorrectable": 0,
                },
                "uuidGeneration": 0,
            }
        )
    return {
        "version": STATE_VERSION,
        "spec": spec,
        "seed": seed,
        "bootTime": time.time() if boot_time is None else boot_time,
        "driverVersion": DRIVER_VERSION,
        "nvmlVersion": NVML_VERSION,
        "cudaDriverVersion": CUDA_DRIVER_VERSION,
        "nvswitch": layout.nvswitch,
        "eventSeq": 0,
        "events": [],
        "nextPid": 100000,
        "gpus": gpus,
    }


def model_of(gpu: Doc) -> ModelSpec:
    return MODELS[gpu["model"]]


class StateStore:
    """Reads and updates one node's state file; see the module docstring for the protocol."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._cached: Doc | None = None
        self._cached_key: tuple[int, int, int] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, doc: Doc) -> None:
        """Write ``doc`` unless another process created the state first (that one wins)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self.path.exists():
                self._write(doc)

    def read(self) -> Doc:
        try:
            st = self.path.stat()
        except FileNotFoundError as err:
            raise ConfigError(f"simulated node state {self.path} does not exist") from err
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cached is None or key != self._cached_key:
            self._cached = self._parse(self.path.read_text())
            self._cached_key = key
        return self._cached

    @contextlib.contextmanager
    def update(self) -> Iterator[Doc]:
        """Yield a fresh copy of the state under the exclusive lock; write it back if no error."""
        with self._locked():
            doc = self._parse(self.path.read_text())
            yield doc
            self._write(doc)

    def _parse(self, text: str) -> Doc:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{self.path}:{err.lineno}: simulated node state is not valid JSON: {err.msg}"
            ) from err
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            raise ConfigError(f"{self.path}: not a simulated node state of version {STATE_VERSION}")
        for gpu in doc.get("gpus", []):
            if gpu.get("model") not in MODELS:
                raise ConfigError(
                    f"{self.path}: gpus[{gpu.get('index')}].model: "
                    f"unknown model {gpu.get('model')!r}"
                )
        return doc

    def _write(self, doc: Doc) -> None:
        # One compact ``json.dumps`` (the C encoder; ``json.dump`` to a file, or any indent,
        # takes the pure-Python one: 4x slower on every simulated NVML call that changes state).
        # No fsync: the rename alone is atomic for readers, and a simulated GPU's state need not
        # outlive a crash of the machine (a real GPU's MIG layout does not survive a reboot).
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
