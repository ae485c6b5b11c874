"""Retry with exponential backoff on what is worth retrying — 409 Conflict, 429 (honouring
``Retry-After``), 5xx, dropped connections — and one ``KubeError`` naming the verb and object
when it is not, or when the attempts run out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx2
from lightkube.core.exceptions import ApiError

from gpu_operator.errors import KubeError
from gpu_operator.kube.settings import RetryPolicy as RetryPolicy

T = TypeVar("T")


def status_code(error: BaseException) -> int | None:
    """The HTTP status of a failed request (watch streams fail before a Status is decoded)."""
    if isinstance(error, ApiError):
        return error.status.code
    if isinstance(error, httpx2.HTTPStatusError):
        return error.response.status_code
    return None


def is_retryable(error: BaseException) -> bool:
    """Transient: a conflict (re-read and try again), throttling, a server error, a dropped
    connection. 409 AlreadyExists is not transient."""
    if isinstance(error, ApiError):
        code = error.status.code or 0
        if code == 409:
            return error.status.reason != "AlreadyExists"
        return code == 429 or code >= 500
    if isinstance(error, httpx2.HTTPStatusError):
        code = error.response.status_code
        return code in (409, 429) or code >= 500
    return isinstance(error, httpx2.TransportError)


def kube_error(error: BaseException, what: str) -> KubeError:
    """One line naming what failed (``patch node gpu-1``) and why, with the cause chained."""
    if isinstance(error, ApiError):
        status = error.status
        reason = f" ({status.reason})" if status.reason else ""
        message = f"{what}: {status.code}{reason}: {status.message}"
    elif isinstance(error, httpx2.HTTPStatusError):
        response = error.response
        message = f"{what}: {response.status_code} {response.reason_phrase}"
    else:
        message = f"{what}: {type(error).__name__}: {error}"
    result = KubeError(message)
    result.__cause__ = error
    return result


def retry(fn: Callable[[], T], what: str, policy: RetryPolicy = RetryPolicy()) -> T:
    """Call ``fn`` until it succeeds or fails for good; ``fn`` must re-read what it needs, so a
    409 retry works on fresh data."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except (ApiError, httpx2.TransportError) as error:
            if not is_retryable(error) or attempt == policy.attempts:
                raise kube_error(error, what) from error
            time.sleep(policy.delay(attempt, error))
    raise AssertionError("unreachable")


async def aretry(
    fn: Callable[[], Awaitable[T]], what: str, policy: RetryPolicy = RetryPolicy()
) -> T:
    """``retry`` for coroutines."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await fn()
        except (ApiError, httpx2.TransportError) as error:
            if not is_retryable(error) or attempt == policy.attempts:
                raise kube_error(error, what) from error
            await asyncio.sleep(policy.delay(attempt, error))
    raise AssertionError("unreachable")
