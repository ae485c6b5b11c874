"""Request bodies in ``application/vnd.kubernetes.protobuf``: the ``k8s\\0`` envelope
(``runtime.Unknown``), the protobuf wire format, and the conversion of a decoded message into
the JSON object the rest of the emulator handles, driven by the field tables in
``protoschema``.

kubectl's typed generators (``create namespace|configmap|secret|deployment|serviceaccount``,
``run``, ``drain``'s evictions) send protobuf and nothing else: client-go falls back to JSON after
a 415 only for CBOR, so a server that wants those commands to work must read protobuf. The
conversion follows Go's JSON encoding of the same struct: a non-pointer scalar at its zero value
is left out (``omitempty``), a pointer scalar is kept even when zero (``immutable: false`` means
something), and a field this emulator has no table entry for is tolerated only while it is
empty — otherwise the request is refused naming the message and field number, never silently
losing a setting."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from gpu_operator.sandbox.apiserver.protoschema import KINDS, MESSAGES, SKIP
from gpu_operator.sandbox.apiserver.status import ApiStatus

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"
VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5
Fields = list[tuple[int, int, Any]]
"""(field number, wire type, value): an int for varints and fixed, bytes for BYTES."""


class ProtoError(ValueError):
    """The body is not the protobuf this emulator can read; the message says where."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 64 bits")


def fields(data: bytes) -> Fields:
    """The raw fields of one message, in wire order."""
    out: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == VARINT:
            value, pos = _varint(data, pos)
        elif wire == BYTES:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtoError(f"field {number} is longer than the message")
            value, pos = data[pos : pos + length], pos + length
        elif wire == FIXED64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == FIXED32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtoError(f"field {number} has wire type {wire}, which Kubernetes never uses")
        if number == 0:
            raise ProtoError("field number 0")
        out.append((number, wire, value))
    return out


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """``k8s\\0`` + ``runtime.Unknown`` → (apiVersion, kind, raw object bytes)."""
    if not body.startswith(MAGIC):
        raise ProtoError("the body does not start with the k8s\\0 protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, _, value in fields(body[len(MAGIC) :]):
        if number == 1:  # typeMeta
            for sub, _, text in fields(value):
                if sub == 1:
                    api_version = text.decode()
                elif sub == 2:
                    kind = text.decode()
        elif number == 2:
            raw = value
        elif number == 3 and value:
            raise ProtoError(f"contentEncoding {value.decode(errors='replace')!r} is not supported")
    return api_version, kind, raw


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data: bytes, micro: bool) -> str | None:
    seconds = nanos = 0
    for number, _, value in fields(data):
        if number == 1:
            seconds = _signed(value)
        elif number == 2:
            nanos = value
    if not seconds and not nanos:
        return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{nanos // 1000:06d}Z" if micro else f"{stamp}Z"


def _int_or_string(data: bytes) -> int | str:
    kind, number_value, text = 0, 0, ""
    for number, _, value in fields(data):
        if number == 1:
            kind = value
        elif number == 2:
            number_value = _signed(value)
        elif number == 3:
            text = value.decode()
    return text if kind == 1 else number_value


def _quantity(data: bytes) -> str:
    return next((v.decode() for n, _, v in fields(data) if n == 1), "0")


def _zero(wire: int, value: Any) -> bool:
    return value == 0 if wire != BYTES else len(value) == 0


def _scalar(kind: str, wire: int, value: Any, where: str) -> Any:
    """One value of a leaf type (see ``protoschema``) from its wire form."""
    if kind == "string":
        return bytes(value).decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return _signed(value)
    if kind == "Time" or kind == "MicroTime":
        return _time(value, kind == "MicroTime")
    if kind == "Quantity":
        return _quantity(value)
    if kind == "IntOrString":
        return _int_or_string(value)
    if kind == "RawJSON":
        raw = next((v for n, _, v in fields(value) if n == 1), b"")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ProtoError(f"{where}: embedded object is not JSON") from None
    return message(kind, value, where)


def _map_entry(data: bytes, kind: str, where: str) -> tuple[str, Any]:
    key, value = "", None
    for number, wire, raw in fields(data):
        if number == 1:
            key = raw.decode()
        elif number == 2:
            value = _scalar(kind, wire, raw, f"{where}[{key}]")
    if value is None:
        value = {"string": "", "bytes": "", "Quantity": "0"}.get(kind, {})
    return key, value


def _kind_of(spec: str) -> tuple[str, str, bool]:
    """``[X]`` → ("list", X), ``map<X>`` → ("map", X), ``X?`` → pointer."""
    if spec.startswith("["):
        return "list", spec[1:-1], False
    if spec.startswith("map<"):
        return "map", spec[4:-1], False
    if spec.endswith("?"):
        return "one", spec[:-1], True
    return "one", spec, False


def message(name: str, data: bytes, where: str = "") -> dict[str, Any]:
    """Decode message ``name`` (a ``protoschema.MESSAGES`` key) into a JSON object."""
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        entry = table.get(number)
        if entry is None:
            if _zero(wire, value):
                continue
            raise ProtoError(
                f"{where or name}: protobuf field {number} of {name} is not known to this emulator"
            )
        key, spec = entry
        path = f"{where}.{key}" if where else key
        shape, kind, pointer = _kind_of(spec)
        if kind == SKIP:
            continue
        if shape == "list":
            out.setdefault(key, []).append(_scalar(kind, wire, value, path))
        elif shape == "map":
            item_key, item = _map_entry(value, kind, path)
            out.setdefault(key, {})[item_key] = item
        else:
            decoded = _scalar(kind, wire, value, path)
            if decoded is None:
                continue
            if not pointer and kind in ("string", "bool", "int") and not decoded:
                continue
            if key == "":  # an embedded struct: its fields are inline in JSON
                out.update(decoded)
            else:
                out[key] = decoded
    return out


def decode_body(body: bytes) -> dict[str, Any]:
    """A whole protobuf request body → the JSON object it stands for, or a 415 that says what
    the emulator could not read and what to send instead."""
    try:
        api_version, kind, raw = unwrap(body)
        name = KINDS.get(f"{api_version}/{kind}")
        if name is None:
            raise ApiStatus(
                415,
                f"the emulator decodes protobuf bodies of {', '.join(sorted(KINDS))} only, not "
                f"{api_version} {kind}; send it as JSON (kubectl create -f FILE, or apply)",
            )
        obj = message(name, raw)
    except ProtoError as error:
        raise ApiStatus(
            415,
            f"the protobuf body could not be decoded ({error}); send it as JSON "
            "(kubectl create -f FILE, or apply)",
        ) from None
    return {"apiVersion": api_version, "kind": kind, **obj}
