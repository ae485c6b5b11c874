"""Kubernetes Events about our objects (core/v1, as ``kubectl describe`` shows them): a pure
builder and a poster."""

from __future__ import annotations

import datetime
import secrets
from typing import Any, Literal

from lightkube import AsyncClient, Client
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from gpu_operator.errors import ConfigError
from gpu_operator.kube.retry import RetryPolicy, aretry, retry
from gpu_operator.kube.settings import FIELD_MANAGER

EventType = Literal["Normal", "Warning"]


def build_event(
    involved: Any,
    reason: str,
    message: str,
    *,
    type: EventType = "Normal",
    component: str = FIELD_MANAGER,
    now: datetime.datetime | None = None,
) -> Event:
    """An Event about ``involved`` (any lightkube resource object with metadata). Events about
    cluster-scoped objects (nodes) go to ``default``, as the kubelet's do."""
    meta = getattr(involved, "metadata", None)
    if meta is None or not meta.name:
        raise ConfigError("an Event needs an involved object with metadata.name")
    if type not in ("Normal", "Warning"):
        raise ConfigError(f"Event type must be 'Normal' or 'Warning', not {type!r}")
    when = now or datetime.datetime.now(datetime.UTC)
    return Event(
        metadata=ObjectMeta(
            name=f"{meta.name}.{secrets.token_hex(8)}", namespace=meta.namespace or "default"
        ),
        involvedObject=ObjectReference(
            apiVersion=getattr(involved, "apiVersion", None),
            kind=getattr(involved, "kind", None) or type_name(involved),
            name=meta.name,
            namespace=meta.namespace,
            uid=meta.uid,
            resourceVersion=meta.resourceVersion,
        ),
        reason=reason,
        message=message,
        type=type,
        count=1,
        firstTimestamp=when,
        lastTimestamp=when,
        source=EventSource(component=component),
        reportingComponent=component,
        reportingInstance=component,
    )


def type_name(obj: Any) -> str:
    return type(obj).__name__


def post_event(
    client: Client,
    involved: Any,
    reason: str,
    message: str,
    *,
    type: EventType = "Normal",
    policy: RetryPolicy = RetryPolicy(),
) -> Event:
    event = build_event(involved, reason, message, type=type)
    return retry(lambda: client.create(event), f"post event {reason}", policy)


async def apost_event(
    client: AsyncClient,
    involved: Any,
    reason: str,
    message: str,
    *,
    type: EventType = "Normal",
    policy: RetryPolicy = RetryPolicy(),
) -> Event:
    event = build_event(involved, reason, message, type=type)

    async def attempt() -> Event:
        return await client.create(event)

    return await aretry(attempt, f"post event {reason}", policy)
