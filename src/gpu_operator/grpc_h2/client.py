"""One unary gRPC call over a unix socket, without grpcio: the request's bytes out, the
response's bytes back, the status read from the ``grpc-status`` trailer.

A fresh connection per call (the callers make one call now and then: PodResources ``List``, the
device plugin's ``Register``), so there is no channel state to go stale when the peer restarts.
"""

from __future__ import annotations

import socket as sockets
import time
from pathlib import Path

from gpu_operator.grpc_h2.status import RpcError, StatusCode, code_name, decode_message


def unary_call(socket: Path, method: str, request: bytes, timeout_s: float) -> bytes:
    """One unary gRPC call to ``method`` (``/package.Service/Method``) over the unix socket
    ``socket``: the response message's bytes. ``RpcError`` (an ``OSError``) for a non-OK status,
    its name and message; ``TimeoutError`` past ``timeout_s``; ``OSError`` for the transport;
    ``ValueError`` for a reply that is not gRPC."""
    import h2.config
    import h2.connection
    import h2.events

    deadline = time.monotonic() + timeout_s
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(socket))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("grpc-timeout", f"{max(1, int(timeout_s * 1000))}m"),
            ],
        )
        framed = len(request).to_bytes(5, "big") + request
        # The request is small (a few hundred bytes), well inside the initial 64 KiB window.
        conn.send_data(stream, framed, end_stream=True)
        sock.sendall(conn.data_to_send())
        body = bytearray()
        headers: dict[str, str] = {}
        ended = False
        while not ended:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                raise OSError("UNAVAILABLE: the peer closed the connection")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    headers.update((str(k), str(v)) for k, v in event.headers or ())
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    conn.acknowledge_received_data(event.flow_controlled_length or 0, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.StreamReset):
                    raise OSError(f"UNAVAILABLE: stream reset ({event.error_code!r})")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise OSError(f"UNAVAILABLE: connection ended ({event.error_code!r})")
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
    if headers.get(":status") != "200":
        raise ValueError(f"HTTP status {headers.get(':status')!r}, not a gRPC reply")
    code = headers.get("grpc-status", "")
    if code != "0":
        known = code.isdigit() and int(code) in StatusCode._value2member_map_
        raise RpcError(
            StatusCode(int(code)) if known else StatusCode.UNKNOWN,
            decode_message(headers.get("grpc-message", "")),
            code_name(code),
        )
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        raise ValueError("the reply is not one uncompressed gRPC message")
    return bytes(body[5:])
