"""Lease-based leader election (``coordination.k8s.io/v1`` Lease ``53822513.nvidia.com``, the
upstream ID): one replica writes, the others watch and wait. Taking over needs the holder's lease
to have expired; every change is guarded by ``resourceVersion``, so two replicas never both win."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

log = logging.getLogger(__name__)
LEASE_NAME = "53822513.nvidia.com"


@dataclass(frozen=True)
class LeaderSettings:
    """identity: this replica (pod name). lease_s: how long a lease lasts without renewal.
    renew_s: how often the holder renews (and others retry)."""

    identity: str
    namespace: str
    name: str = LEASE_NAME
    lease_s: float = 15.0
    renew_s: float = 5.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    """``await elector.try_acquire()`` → whether this replica leads now (call every renew_s)."""

    def __init__(
        self, client: AsyncClient, settings: LeaderSettings, clock: Callable[[], dt.datetime] = _now
    ):
        self.client = client
        self.settings = settings
        self.clock = clock
        self.leading = False

    def _spec(self, now: dt.datetime, acquired: dt.datetime | None, transitions: int) -> LeaseSpec:
        return LeaseSpec(
            holderIdentity=self.settings.identity,
            leaseDurationSeconds=int(self.settings.lease_s),
            acquireTime=acquired or now,
            renewTime=now,
            leaseTransitions=transitions,
        )

    async def try_acquire(self) -> bool:
        now = self.clock()
        try:
            lease = await self.client.get(
                Lease, self.settings.name, namespace=self.settings.namespace
            )
        except ApiError as error:
            if error.status.code != 404:
                raise
            try:
                await self.client.create(
                    Lease(
                        metadata=ObjectMeta(
                            name=self.settings.name, namespace=self.settings.namespace
                        ),
                        spec=self._spec(now, None, 0),
                    )
                )
            except ApiError as conflict:
                if conflict.status.code != 409:
                    raise
                return self._set(False)
            return self._set(True)
        spec = lease.spec or LeaseSpec()
        mine = spec.holderIdentity == self.settings.identity
        renewed = spec.renewTime
        duration = dt.timedelta(seconds=spec.leaseDurationSeconds or self.settings.lease_s)
        expired = renewed is None or renewed + duration < now or not spec.holderIdentity
        if not mine and not expired:
            return self._set(False)
        transitions = (spec.leaseTransitions or 0) + (0 if mine else 1)
        lease.spec = self._spec(now, spec.acquireTime if mine else None, transitions)
        try:
            await self.client.replace(lease)
        except ApiError as error:
            if error.status.code != 409:
                raise
            return self._set(False)
        return self._set(True)

    async def release(self) -> None:
        """Give the lease up at shutdown so another replica takes over at once."""
        if not self.leading:
            return
        try:
            lease = await self.client.get(
                Lease, self.settings.name, namespace=self.settings.namespace
            )
            if lease.spec and lease.spec.holderIdentity == self.settings.identity:
                lease.spec.holderIdentity = None
                await self.client.replace(lease)
        except ApiError as error:
            log.warning("releasing the leader lease failed: %s", error)
        self.leading = False

    def _set(self, leading: bool) -> bool:
        if leading != self.leading:
            log.info(
                "%s leadership (%s)", "acquired" if leading else "lost", self.settings.identity
            )
        self.leading = leading
        return leading
