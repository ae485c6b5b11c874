"""Server-side apply under our field manager: the one way the operator writes whole objects."""

from __future__ import annotations

from typing import Any, TypeVar

from lightkube import AsyncClient, Client

from gpu_operator.kube.retry import RetryPolicy, aretry, retry
from gpu_operator.kube.settings import FIELD_MANAGER

R = TypeVar("R")


def _what(obj: Any) -> str:
    meta = getattr(obj, "metadata", None)
    name = getattr(meta, "name", "?")
    namespace = getattr(meta, "namespace", None)
    where = f"{namespace}/{name}" if namespace else name
    return f"apply {type(obj).__name__} {where}"


def apply(
    client: Client,
    obj: R,
    *,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    policy: RetryPolicy = RetryPolicy(),
) -> R:
    """Server-side apply ``obj``. ``force`` takes over fields another manager set (the
    operator is the authority for what it renders); without it a conflict is a ``KubeError``."""
    result: R = retry(
        lambda: client.apply(obj, field_manager=field_manager, force=force),  # type: ignore[call-overload]
        _what(obj),
        policy,
    )
    return result


async def aapply(
    client: AsyncClient,
    obj: R,
    *,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    policy: RetryPolicy = RetryPolicy(),
) -> R:
    """``apply`` for asyncio clients."""

    async def attempt() -> R:
        applied: R = await client.apply(obj, field_manager=field_manager, force=force)  # type: ignore[call-overload]
        return applied

    return await aretry(attempt, _what(obj), policy)
