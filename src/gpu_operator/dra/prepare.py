"""Prepare and unprepare claims: for each claim the kubelet names, read the ResourceClaim
(through a claim source: the API in production), take its results for our driver on this
node, write the claim's CDI spec and return one CDI device id per device; unprepare removes
the spec. Both are idempotent and checkpointed before they answer, so a restarted plugin
answers the same and still knows what to remove. A claim that can't be prepared is an error
string for that claim (the kubelet retries it), never an exception out of the servicer.
With dynamic MIG (``mig``), a claim's MIG devices are created (all or none) before its spec is
written and destroyed at unprepare; the checkpoint keeps what was created."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gpu_operator.dra import checkpoint
from gpu_operator.dra.cdi import cdi_id, mig_cdi_id, spec_file_name
from gpu_operator.dra.checkpoint import PreparedClaim, PreparedDevice
from gpu_operator.dra.claims import ClaimError, ClaimRef, our_results
from gpu_operator.dra.mig_node import KnownDevices, MigNode, as_mig_device
from gpu_operator.dra.mig_prepare import MigPrepareError, PreparedMig
from gpu_operator.dra.sharing import SharingManager
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
SpecBuilder = Callable[..., dict[str, Any]]
"""(claim UID, the claim's GPUs[, its MIG devices as (name, parent, MigDevice)]) → the claim's
CDI spec (``cdi.claim_spec`` with the node's driver tree and options)."""


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
        sharing: SharingManager | None = None,
        mig: MigNode | None = None,
        on_mig_change: Callable[[], None] = lambda: None,
    ):
        self.node = node
        self.gpus = dict(gpus)
        """Device name (``gpu-<minor>``) → the GPU."""
        self.cdi_root = cdi_root
        self.checkpoint_path = checkpoint_path
        self._claims = claims
        self.sharing = sharing
        """Time-slicing and MPS of the claims' opaque configs (``sharing``)."""
        self._spec = spec if sharing is None else sharing.wrap_spec(spec)
        self.mig = mig
        self._on_mig_change = on_mig_change
        self._made_or_removed = False
        self.mig_version = 0
        """Bumped (under the lock) each time a prepare or unprepare made or removed instances."""
        self._lock = threading.Lock()
        self._prepared = checkpoint.load(checkpoint_path)

    def prepared(self) -> dict[str, PreparedClaim]:
        with self._lock:
            return dict(self._prepared)

    def owned_mig(self) -> set[str]:
        """The MIG UUIDs the driver created (checkpointed); call with the lock held."""
        return {str(d.mig["uuid"]) for c in self._prepared.values() for d in c.devices if d.mig}

    def mig_snapshot(self) -> tuple[set[str], int]:
        """The MIG UUIDs the driver created and the ``mig_version`` they go with."""
        with self._lock:
            return self.owned_mig(), self.mig_version

    def _in_use(self, claim_uid: str) -> set[str]:
        """The devices of the prepared claims other than ``claim_uid``."""
        return {d.device for u, c in self._prepared.items() if u != claim_uid for d in c.devices}

    def _mig_changed(self) -> None:
        """Tell the publisher once instances were made or removed (their slices are ours, but
        a failed prepare may leave the node's state read differently)."""
        if self._made_or_removed:
            self._made_or_removed = False
            self.mig_version += 1
            self._on_mig_change()

    def spec_path(self, claim_uid: str) -> Path:
        return self.cdi_root / spec_file_name(claim_uid)

    # --- prepare ------------------------------------------------------------------------

    def prepare(self, ref: ClaimRef) -> tuple[tuple[PreparedDevice, ...], str]:
        """The claim's devices and ``""``, or no devices and the claim's error."""
        with self._lock:
            try:
                return self._prepare_shared(ref), ""
            except ClaimError as error:
                log.warning("prepare %s (%s): %s", ref, ref.uid, error)
                return (), str(error)
            except GpuOperatorError as error:
                log.warning("prepare %s (%s): %s", ref, ref.uid, error)
                return (), f"ResourceClaim {ref}: {error}"
            finally:
                self._mig_changed()

    def _prepare_shared(self, ref: ClaimRef) -> tuple[PreparedDevice, ...]:
        """``_prepare``, the claim's sharing undone when it fails after applying it."""
        try:
            return self._prepare(ref)
        except BaseException:
            if self.sharing is not None and ref.uid not in self._prepared:
                failed = self.sharing.try_release(ref, self._in_use(ref.uid))
                if failed:
                    log.error("undoing the sharing: %s", failed)
            raise

    def _prepare(self, ref: ClaimRef) -> tuple[PreparedDevice, ...]:
        known = self._prepared.get(ref.uid)
        if known is not None:
            if not self.spec_path(ref.uid).exists():  # removed behind our back: write it again
                gpus = [self._gpu(ref, d.device) for d in known.devices if d.mig is None]
                self._write_spec(ref.uid, gpus, self._migs(known.devices))
            return known.devices
        claim = self._claims(ref.namespace, ref.name)
        results = our_results(ref, claim, self.node, KnownDevices(self.gpus, self.mig))
        names = list(dict.fromkeys(r.device for r in results))
        if self.sharing is not None:  # the configs checked before anything is prepared
            pairs = [(r.request, r.device) for r in results]
            self.sharing.apply(ref.uid, self.sharing.plan(ref, claim, pairs))
        gpus = [self.gpus[n] for n in names if n in self.gpus]
        created: dict[str, PreparedMig] = {}
        if self.mig is not None and len(gpus) < len(names):
            try:
                self._made_or_removed = True
                created = dict(
                    self.mig.prepare_all([n for n in names if n not in self.gpus], self.owned_mig())
                )
            except MigPrepareError as error:
                raise ClaimError(f"ResourceClaim {ref}: {error}") from error
        devices = tuple(
            PreparedDevice(
                request_names=tuple(r.request for r in results if r.device == name),
                pool=self.node,
                device=name,
                cdi_ids=(
                    mig_cdi_id(ref.uid, name)
                    if name in created
                    else cdi_id(ref.uid, self.gpus[name]),
                ),
                mig=created[name].to_dict() if name in created else None,
            )
            for name in names
        )
        try:
            self._write_spec(ref.uid, gpus, self._migs(devices))
            self._prepared[ref.uid] = PreparedClaim(ref.namespace, ref.name, devices)
            try:
                checkpoint.save(self.checkpoint_path, self._prepared)
            except OSError:
                del self._prepared[ref.uid]
                self.spec_path(ref.uid).unlink(missing_ok=True)
                raise
        except BaseException:
            for prepared in created.values():
                self.mig.unprepare(prepared)  # type: ignore[union-attr]
            raise
        log.info(
            "prepared %s (%s): %s", ref, ref.uid, ", ".join(i for d in devices for i in d.cdi_ids)
        )
        return devices

    def _gpu(self, ref: ClaimRef, name: str) -> GpuInfo:
        if name not in self.gpus:
            raise ClaimError(f"ResourceClaim {ref}: prepared device {name} is gone from this node")
        return self.gpus[name]

    def _migs(self, devices: Sequence[PreparedDevice]) -> list[tuple[str, GpuInfo, Any]]:
        out = []
        for d in devices:
            if d.mig is not None and self.mig is not None:
                out.append(
                    (
                        d.device,
                        self.mig.parent(d.device),
                        as_mig_device(PreparedMig.from_dict(d.mig)),
                    )
                )
        return out

    def _write_spec(
        self, claim_uid: str, gpus: Sequence[GpuInfo], migs: Sequence[Any] = ()
    ) -> None:
        built = self._spec(claim_uid, gpus, migs) if migs else self._spec(claim_uid, gpus)
        text = yaml.dump(built, Dumper=_DUMPER, sort_keys=False)
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
                known = self._prepared.get(ref.uid)
                for device in known.devices if known is not None else ():
                    if device.mig is None:
                        continue
                    if self.mig is None:
                        return (
                            f"ResourceClaim {ref}: holds MIG device {device.mig['uuid']} made "
                            "with DynamicMIG, which is off now (FEATURE_GATES=DynamicMIG=true)"
                        )
                    self._made_or_removed = True
                    self.mig.unprepare(PreparedMig.from_dict(device.mig))
                failed = self.sharing and self.sharing.try_release(ref, self._in_use(ref.uid))
                if failed:
                    return failed
                self.spec_path(ref.uid).unlink(missing_ok=True)
                if self._prepared.pop(ref.uid, None) is not None:
                    checkpoint.save(self.checkpoint_path, self._prepared)
                    log.info("unprepared %s (%s)", ref, ref.uid)
            except OSError as error:
                return f"ResourceClaim {ref}: {error.strerror or error}"
            except MigPrepareError as error:
                return f"ResourceClaim {ref}: {error}"
            finally:
                self._mig_changed()
        return ""
