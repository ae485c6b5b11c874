"""gRPC status codes, the ``grpc-message`` percent-encoding, and ``RpcError``: how a call ends."""

from __future__ import annotations

import enum
from urllib.parse import quote, unquote


class StatusCode(enum.IntEnum):
    """The 17 codes of gRPC's ``status.proto``, with its numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def code_name(value: str) -> str:
    """The name of a ``grpc-status`` trailer's value (``status '42'`` for one not defined)."""
    if value.isdigit() and int(value) in StatusCode._value2member_map_:
        return StatusCode(int(value)).name
    return f"status {value!r}"


class RpcError(OSError):
    """A call that ended with a status other than OK: raised by a handler (``Context.abort``)
    to end its call so, and by the client for such a reply (an ``OSError``: the call failed;
    ``name`` is the code's name, or ``status '42'`` for a code gRPC does not define)."""

    def __init__(self, code: StatusCode, details: str, name: str = ""):
        super().__init__(f"{name or code.name}: {details}")
        self.code = code
        self.details = details


def encode_message(details: str) -> str:
    """``grpc-message``: percent-encoded UTF-8, printable ASCII but ``%`` kept as it is."""
    return quote(details, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def decode_message(value: str) -> str:
    return unquote(value)
