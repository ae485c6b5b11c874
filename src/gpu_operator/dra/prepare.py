"""Prepare and unprepare claims: for each claim the kubelet names, read the ResourceClaim
(through a claim source: the API in production), take its results for our driver on this
node, write the claim's CDI spec and return one CDI device id per device; unprepare removes
the spec. Both are idempotent and checkpointed before they answer, so a restarted plugin
answers the same and still knows what to remove. A claim that can't be prepared is an error
string for that claim (the kubelet retries it), never an exception out of the servicer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.dra import checkpoint
from gpu_operator.dra.cdi import cdi_id, spec_file_name
from gpu_operator.dra.checkpoint import PreparedClaim, PreparedDevice
from gpu_operator.dra.claims import ClaimError, ClaimRef, our_results
from gpu_operator.errors import GpuOperatorError
from gpu_operator.gpu.records import GpuInfo
from gpu_operator.toolkit.host_files import write_atomically

log = logging.getLogger(__name__)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's dumper where PyYAML has it: the pure-Python one took most of a prepare (~12 ms of a
CDI spec with the driver's mounts)."""

ClaimSource = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) → the ResourceClaim as the API returns it, ``None`` when there is none;
raises ``GpuOperatorError`` when the API can't be asked."""
SpecBuilder = Callable[[str, Sequence[GpuInfo]], dict[str, Any]]
"""(claim UID, the claim's GPUs) → the claim's CDI spec (``cdi.claim_spec`` with the node's
driver tree and options)."""


class Preparer:
    def __init__(
        self,
        node: str,
        gpus: Mapping[str, GpuInfo],
        *,
        cdi_root: Path,
        checkpoint_path: Path,
        claims: ClaimSource,
        spec: SpecBuilder,
    ):
        self.node = node
        self.gpus = dict(gpus)
        """Device name (``gpu-<minor>``) → the GPU."""
        self.cdi_root = cdi_root
        self.checkpoint_path = checkpoint_path
        self._claims = claims
        self._spec = spec
        self._lock = threading.Lock()
        self._prepared = checkpoint.load(checkpoint_path)

    def prepared(self) -> dict[str, PreparedClaim]:
        with self._lock:
            return dict(self._prepared)

    def spec_path(self, claim_uid: str) -> Path:
        return self.cdi_root / spec_file_name(claim_uid)

    # --- prepare ------------------------------------------------------------------------

    def prepare(self, ref: ClaimRef) -> tuple[tuple[PreparedDevice, ...], str]:
        """The claim's devices and ``""``, or no devices and the claim's error."""
        with self._lock:
            try:
                return self._prepare(ref), ""
            except ClaimError as error:
                log.warning("prepare %s (%s): %s", ref, ref.uid, error)
                return (), str(error)
            except GpuOperatorError as error:
                log.warning("prepare %s (%s): %s", ref, ref.uid, error)
                return (), f"ResourceClaim {ref}: {error}"

    def _prepare(self, ref: ClaimRef) -> tuple[PreparedDevice, ...]:
        known = self._prepared.get(ref.uid)
        if known is not None:
            if not self.spec_path(ref.uid).exists():  # removed behind our back: write it again
                self._write_spec(ref.uid, [self._gpu(ref, d.device) for d in known.devices])
            return known.devices
        results = our_results(ref, self._claims(ref.namespace, ref.name), self.node, self.gpus)
        names = list(dict.fromkeys(r.device for r in results))
        gpus = [self.gpus[n] for n in names]
        devices = tuple(
            PreparedDevice(
                request_names=tuple(r.request for r in results if r.device == name),
                pool=self.node,
                device=name,
                cdi_ids=(cdi_id(ref.uid, self.gpus[name]),),
            )
            for name in names
        )
        self._write_spec(ref.uid, gpus)
        self._prepared[ref.uid] = PreparedClaim(ref.namespace, ref.name, devices)
        try:
            checkpoint.save(self.checkpoint_path, self._prepared)
        except OSError:
            del self._prepared[ref.uid]
            self.spec_path(ref.uid).unlink(missing_ok=True)
            raise
        log.info(
            "prepared %s (%s): %s", ref, ref.uid, ", ".join(i for d in devices for i in d.cdi_ids)
        )
        return devices

    def _gpu(self, ref: ClaimRef, name: str) -> GpuInfo:
        if name not in self.gpus:
            raise ClaimError(f"ResourceClaim {ref}: prepared device {name} is gone from this node")
        return self.gpus[name]

    def _write_spec(self, claim_uid: str, gpus: Sequence[GpuInfo]) -> None:
        text = yaml.dump(self._spec(claim_uid, gpus), Dumper=_DUMPER, sort_keys=False)
        try:
            write_atomically(self.spec_path(claim_uid), text)
        except OSError as error:
            raise GpuOperatorError(
                f"cannot write the CDI spec {self.spec_path(claim_uid)}: {error.strerror or error}"
            ) from error

    # --- unprepare ----------------------------------------------------------------------

    def unprepare(self, ref: ClaimRef) -> str:
        """``""`` once the claim's spec is gone (also for a claim never prepared here)."""
        with self._lock:
            try:
                self.spec_path(ref.uid).unlink(missing_ok=True)
                if self._prepared.pop(ref.uid, None) is not None:
                    checkpoint.save(self.checkpoint_path, self._prepared)
                    log.info("unprepared %s (%s)", ref, ref.uid)
            except OSError as error:
                return f"ResourceClaim {ref}: {error.strerror or error}"
        return ""
