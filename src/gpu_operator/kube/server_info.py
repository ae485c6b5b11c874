"""What the API server says of itself: ``/version`` and one API group's discovery document
(``/apis/<group>``), read through the lightkube client's own HTTP client (its address, TLS and
credentials). lightkube has no call for these; this module is the one place that asks."""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient, Client

from gpu_operator.errors import KubeError

Body = dict[str, Any]


def _check(path: str, response: Any) -> Body | None:
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise KubeError(f"GET {path}: HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    if not isinstance(body, dict):
        raise KubeError(f"GET {path}: expected a JSON object")
    return body


def get_path(client: Client, path: str) -> Body | None:
    """``GET path`` as JSON; ``None`` on 404 (a group the server does not serve)."""
    try:
        response = client._client._client.get(path)
    except Exception as error:  # the transport's own errors (connection refused, TLS)
        raise KubeError(f"GET {path}: {error}") from error
    return _check(path, response)


async def aget_path(client: AsyncClient, path: str) -> Body | None:
    """:func:`get_path` for the asyncio client."""
    try:
        response = await client._client._client.get(path)
    except Exception as error:
        raise KubeError(f"GET {path}: {error}") from error
    return _check(path, response)


def served_versions(group: Body | None) -> list[str]:
    """The versions an ``APIGroup`` document lists (empty for ``None``)."""
    return [str(v.get("version")) for v in (group or {}).get("versions") or []]
