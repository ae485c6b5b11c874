"""Kubernetes ``Status`` bodies: the one exception every handler raises for a failed request."""

from __future__ import annotations

from typing import Any

from gpu_operator.sandbox.apiserver.resources import ResourceType

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


class ApiStatus(Exception):
    """A request failed with ``code``; ``body()`` is the ``Status`` object the client reads."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiStatus:
    return ApiStatus(404, f'{rtype.qualified} "{name}" not found', details=_details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> ApiStatus:
    return ApiStatus(
        409,
        f'{rtype.qualified} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(rtype, name),
    )


def conflict(rtype: ResourceType, name: str, why: str) -> ApiStatus:
    return ApiStatus(
        409,
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {why}',
        details=_details(rtype, name),
    )


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiStatus:
    """422 naming every bad field: ``causes`` is ``[(field path, problem), ...]``."""
    kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    text = ", ".join(f"{path}: {problem}" for path, problem in causes)
    details = {"name": name, "kind": rtype.kind}
    if rtype.group:
        details["group"] = rtype.group
    return ApiStatus(
        422,
        f'{kind} "{name}" is invalid: {text}',
        details={
            **details,
            "causes": [
                {"reason": "FieldValueInvalid", "message": problem, "field": path}
                for path, problem in causes
            ],
        },
    )


def bad_request(message: str) -> ApiStatus:
    return ApiStatus(400, message)


def success(rtype: ResourceType, name: str, uid: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {**_details(rtype, name), "uid": uid},
    }
