"""A gRPC server on a unix socket without grpcio: unary and server-streaming methods over HTTP/2,
spoken with ``h2``.

Threads: one per server reads every connection (a selector over the listener and the
connections) and runs unary handlers; a server-streaming call runs its handler in a thread of
its own for as long as it streams. Handlers see a ``Context``: ``is_active()`` turns false when
the client cancels (``RST_STREAM``, as on its deadline), the connection ends, the call's
``grpc-timeout`` passes or the server stops; ``abort(code, details)`` ends the call with that
status. Responses larger than the peer's flow-control window wait for its ``WINDOW_UPDATE``
without holding up the connection. As grpcio's server: an unknown method is ``UNIMPLEMENTED``
("Method not found!"), a handler's exception ``UNKNOWN`` ("Exception calling application: …",
"Exception iterating responses: …"), a request that does not deserialize ``INTERNAL``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket as sockets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from gpu_operator.grpc_h2.status import RpcError, StatusCode, encode_message

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 30.0
"""A peer that reads nothing for this long while we write to it loses its connection."""
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


@dataclass(frozen=True)
class Method:
    """One method: ``handler(request, context)`` returns the response, or for ``streaming``
    an iterator of responses; the request is read with ``request_from_bytes``, each response
    written with ``response_to_bytes`` (for protobuf: ``Message.FromString`` and
    ``Message.SerializeToString``)."""

    handler: Callable[[Any, Context], Any]
    request_from_bytes: Callable[[bytes], Any]
    response_to_bytes: Callable[[Any], bytes]
    streaming: bool = False


class Context:
    """What a handler knows of its call."""

    def __init__(self, deadline: float | None):
        self._deadline = deadline
        self._ended = threading.Event()

    def is_active(self) -> bool:
        """False once the client cancelled, the connection or the server ended, or the
        deadline passed."""
        if self._ended.is_set():
            return False
        return self._deadline is None or time.monotonic() < self._deadline

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def abort(self, code: StatusCode, details: str) -> NoReturn:
        """End the call with ``code`` and ``details`` (raises)."""
        raise RpcError(code, details)

    def wait_ended(self, timeout: float) -> bool:
        """Block until the call ended (or ``timeout``); True if it did."""
        return self._ended.wait(timeout)

    def end(self) -> None:
        self._ended.set()


def _deadline(value: str | None) -> float | None:
    """``grpc-timeout`` (``100m``, ``5S``): the monotonic deadline, ``None`` without one."""
    if not value or value[-1] not in _TIMEOUT_UNITS or not value[:-1].isdigit():
        return None
    return time.monotonic() + int(value[:-1]) * _TIMEOUT_UNITS[value[-1]]


@dataclass
class _Stream:
    id: int
    path: str
    context: Context
    body: bytearray = field(default_factory=bytearray)
    outbound: collections.deque[tuple[str, Any]] = field(default_factory=collections.deque)
    headers_sent: bool = False
    closed: bool = False


class _Connection:
    """One client connection: the h2 state, its socket, its open streams; the lock orders
    every use of the h2 state and every write to the socket."""

    def __init__(self, sock: sockets.socket):
        self.sock = sock
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding="utf-8",
                # Ours are built right; theirs are only looked up (``:path``, ``grpc-timeout``):
                # h2's header checks were a third of a unary call's time here.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
            )
        )
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.closed = False

    def flush(self) -> None:
        """Write what h2 has queued (lock held)."""
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()

    def pump(self, stream: _Stream) -> None:
        """Send the stream's queued frames as far as the peer's window lets (lock held)."""
        try:
            while stream.outbound and not stream.closed and not self.closed:
                kind, payload = stream.outbound[0]
                if kind == "data":
                    window = min(
                        self.h2.local_flow_control_window(stream.id),
                        self.h2.max_outbound_frame_size,
                    )
                    if window <= 0:
                        break
                    self.h2.send_data(stream.id, payload[:window])
                    if len(payload) > window:
                        stream.outbound[0] = ("data", payload[window:])
                        continue
                    stream.outbound.popleft()
                else:
                    stream.outbound.popleft()
                    end = kind == "trailers"
                    self.h2.send_headers(stream.id, payload, end_stream=end)
                    if end:
                        self.forget(stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.forget(stream)
        self.flush()

    def forget(self, stream: _Stream) -> None:
        stream.closed = True
        stream.outbound.clear()
        stream.context.end()
        self.streams.pop(stream.id, None)

    def close(self) -> None:
        """End every call and shut the socket down (lock held); the serving thread, woken by
        the shutdown, unregisters and closes it, so its descriptor is never reused under the
        selector's feet."""
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            self.forget(stream)
        with contextlib.suppress(OSError):
            self.sock.shutdown(sockets.SHUT_RDWR)


class Server:
    """``Server(path, {"/pkg.Service/Method": Method(...)}).start()`` serves on the unix socket
    ``path`` (which must not exist: the caller removes a stale one); ``stop`` ends it."""

    def __init__(self, path: Path, methods: Mapping[str, Method], *, name: str = "grpc-h2"):
        self.path = path
        self.methods = dict(methods)
        self.name = name
        self._listener: sockets.socket | None = None
        self._wake_r, self._wake_w = sockets.socketpair()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self._calls: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind and listen (``OSError`` as ``bind`` raises it), then serve in a thread."""
        listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            listener.listen(16)
        except OSError:
            listener.close()
            self._wake_r.close()
            self._wake_w.close()
            raise
        listener.setblocking(False)
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, grace: float | None = None) -> None:
        """Stop: refuse new connections; with ``grace``, give running streaming calls that
        long to end (their handlers see ``is_active()`` only once they are cancelled), then
        cancel every call and close every connection."""
        if self._thread is None:
            return
        if grace:
            deadline = time.monotonic() + grace
            for call in self._running_calls():
                call.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(5)
        self._thread = None
        for call in self._running_calls():  # they see is_active() false and end
            call.join(1)

    def _running_calls(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._calls)

    # --- the serving thread -----------------------------------------------------------

    def _serve(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.data is None:
                        self._accept(selector)
                    elif key.data == "wake":
                        self._wake_r.recv(64)
                    else:
                        connection: _Connection = key.data
                        try:
                            alive = self._read(connection)
                        except Exception:  # a bug here must not end the other connections
                            log.exception("%s: dropping a connection", self.name)
                            alive = False
                        if not alive:
                            with connection.lock:
                                connection.close()
                            selector.unregister(connection.sock)
                            connection.sock.close()
                            self._connections.discard(connection)
        finally:
            # The listener first: a client that lost its connection must find nobody to
            # reconnect to (grpcio retries a call the GOAWAY says was never started).
            selector.unregister(self._listener)
            self._listener.close()
            for connection in list(self._connections):
                with connection.lock:
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        # "Any stream may have been processed": a GOAWAY naming the last
                        # stream seen lets grpcio retry later ones on a new connection, and
                        # such a retried call can outlive its deadline (grpcio 1.85).
                        connection.h2.close_connection(last_stream_id=2**31 - 1)
                        connection.flush()
                    connection.close()
                connection.sock.close()
            self._connections.clear()
            selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(True)
        sock.settimeout(SEND_TIMEOUT_S)
        connection = _Connection(sock)
        with connection.lock:
            connection.h2.initiate_connection()
            connection.flush()
        self._connections.add(connection)
        selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, connection: _Connection) -> bool:
        """Handle what the peer sent; False once the connection is over."""
        try:
            data = connection.sock.recv(65536)
        except OSError:
            data = b""
        ready: list[_Stream] = []
        with connection.lock:
            if not data:
                connection.close()
                return False
            try:
                events = connection.h2.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                log.debug("%s: HTTP/2 protocol error from a client: %s", self.name, error)
                connection.flush()  # h2 queued a GOAWAY
                connection.close()
                return False
            for event in events:
                self._event(connection, event, ready)
            connection.flush()
            over = connection.closed
        for stream in ready:
            self._dispatch(connection, stream)
        return not over

    def _event(self, connection: _Connection, event: Any, ready: list[_Stream]) -> None:
        streams = connection.streams
        if isinstance(event, h2.events.RequestReceived):
            headers = {str(k): str(v) for k, v in event.headers or ()}
            stream_id = event.stream_id or 0
            context = Context(_deadline(headers.get("grpc-timeout")))
            streams[stream_id] = _Stream(stream_id, headers.get(":path", ""), context)
        elif isinstance(event, h2.events.DataReceived):
            stream = streams.get(event.stream_id or 0)
            if stream is not None:
                stream.body += event.data or b""
            connection.h2.acknowledge_received_data(
                event.flow_controlled_length or 0, event.stream_id or 0
            )
        elif isinstance(event, h2.events.StreamEnded):
            stream = streams.get(event.stream_id or 0)
            if stream is not None:
                ready.append(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = streams.get(event.stream_id or 0)
            if stream is not None:
                connection.forget(stream)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for stream in list(streams.values()):
                if stream.outbound:
                    connection.pump(stream)
        elif isinstance(event, h2.events.ConnectionTerminated):
            connection.close()

    # --- calls ------------------------------------------------------------------------

    def _dispatch(self, connection: _Connection, stream: _Stream) -> None:
        method = self.methods.get(stream.path)
        if method is None:
            self._finish(connection, stream, StatusCode.UNIMPLEMENTED, "Method not found!")
            return
        body = bytes(stream.body)
        if len(body) < 5 or int.from_bytes(body[1:5], "big") != len(body) - 5:
            self._finish(connection, stream, StatusCode.INTERNAL, "Request is not one message")
            return
        if body[0] != 0:
            self._finish(connection, stream, StatusCode.UNIMPLEMENTED, "Compression unsupported")
            return
        try:
            request = method.request_from_bytes(body[5:])
        except Exception:
            self._finish(
                connection, stream, StatusCode.INTERNAL, "Exception deserializing request!"
            )
            return
        if method.streaming:
            call = threading.Thread(
                target=self._stream_call,
                args=(connection, stream, method, request),
                name=f"{self.name}-stream",
                daemon=True,
            )
            with self._lock:  # started before ``stop`` can see it, listed before it ends
                call.start()
                self._calls.add(call)
            return
        try:
            response = method.handler(request, stream.context)
            message = method.response_to_bytes(response)
        except RpcError as error:
            self._finish(connection, stream, error.code, error.details)
            return
        except Exception as error:
            log.exception("%s: %s failed", self.name, stream.path)
            self._finish(
                connection, stream, StatusCode.UNKNOWN, f"Exception calling application: {error}"
            )
            return
        self._send(connection, stream, message, last=True)

    def _stream_call(
        self, connection: _Connection, stream: _Stream, method: Method, request: Any
    ) -> None:
        responses: Iterator[Any] | None = None
        try:
            responses = iter(method.handler(request, stream.context))
            for response in responses:
                if not stream.context.is_active():
                    break
                self._send(connection, stream, method.response_to_bytes(response))
            if stream.context.is_active():
                self._finish(connection, stream, StatusCode.OK, "")
            elif not stream.closed:  # our side's deadline, not the client's cancel
                self._finish(connection, stream, StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        except RpcError as error:
            self._finish(connection, stream, error.code, error.details)
        except Exception as error:
            log.exception("%s: %s failed", self.name, stream.path)
            self._finish(
                connection, stream, StatusCode.UNKNOWN, f"Exception iterating responses: {error}"
            )
        finally:
            close = getattr(responses, "close", None)
            if close is not None:
                close()
            with self._lock:
                self._calls.discard(threading.current_thread())

    def _send(
        self, connection: _Connection, stream: _Stream, message: bytes, *, last: bool = False
    ) -> None:
        """Send one response message; ``last``: with the OK trailers, in one write."""
        with connection.lock:
            if stream.closed:
                return
            if not stream.headers_sent:
                stream.headers_sent = True
                stream.outbound.append(
                    ("headers", [(":status", "200"), ("content-type", "application/grpc")])
                )
            stream.outbound.append(("data", len(message).to_bytes(5, "big") + message))
            if last:
                stream.outbound.append(("trailers", [("grpc-status", "0")]))
            connection.pump(stream)

    def _finish(
        self, connection: _Connection, stream: _Stream, code: StatusCode, details: str
    ) -> None:
        """End the call with its status: trailers, or a trailers-only response."""
        status = [("grpc-status", str(int(code)))]
        if details:
            status.append(("grpc-message", encode_message(details)))
        with connection.lock:
            if stream.closed:
                return
            if not stream.headers_sent:
                stream.headers_sent = True
                status = [(":status", "200"), ("content-type", "application/grpc"), *status]
            stream.outbound.append(("trailers", status))
            connection.pump(stream)
