"""The exporter's HTTP/1.1 server: GET and HEAD on kept-alive connections, one thread per
connection, TLS only when the web config names a certificate (``ssl`` is imported then).

Built on ``socket`` alone: ``http.server`` imports ``email`` (to parse headers), ``html`` and
``http.client`` (and through it ``ssl``), ~4 MiB of a process that answers three paths with
pre-rendered bytes. A response leaves in one ``sendall`` (headers and body together), and the
connection has ``TCP_NODELAY``, so no Nagle delay holds a kept-alive scrape back.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import ssl
    from io import BufferedReader

log = logging.getLogger(__name__)

MAX_LINE = 8192
"""Longest request or header line accepted (Go's net/http allows 1 MiB for all headers)."""
MAX_HEADERS = 100
IDLE_TIMEOUT_S = 300.0
"""A connection with no request for this long is closed (Prometheus reconnects)."""

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Request(NamedTuple):
    method: str
    """``GET`` or ``HEAD`` (anything else is answered 405 before the handler sees it)."""
    path: str
    """The target without its query string."""
    headers: dict[str, str]
    """Header names lower-cased; a repeated header keeps its last value."""


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]


class _BadRequest(Exception):
    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


def http_date(now: float | None = None) -> str:
    """RFC 9110's IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), locale-independent."""
    t = time.gmtime(now)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def render(response: Response, *, head_only: bool = False, close: bool = False) -> bytes:
    """The bytes of ``response`` on the wire: status line, headers, blank line, body."""
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Date: {http_date()}",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def _line(reader: BufferedReader, what: str) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise _BadRequest(431 if what == "header" else 400, f"{what} line too long")
    return line


def read_request(reader: BufferedReader) -> tuple[Request, bool] | None:
    """The next request on a connection and whether the client keeps it open; ``None`` when
    the client closed it. Raises ``_BadRequest`` for what is not an HTTP/1.x request."""
    line = _line(reader, "request")
    while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore empty lines before a request
        line = _line(reader, "request")
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise _BadRequest(400, f"malformed request line {line[:80]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, f"unsupported version {version[:20]!r}")
    headers: dict[str, str] = {}
    while True:
        raw = _line(reader, "header")
        if raw in (b"\r\n", b"\n", b""):
            break
        if len(headers) >= MAX_HEADERS:
            raise _BadRequest(431, "too many headers")
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(400, f"malformed header {raw[:80]!r}")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(400, "a request body is not accepted")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise _BadRequest(400, f"bad Content-Length {length[:20]!r}")
    if int(length) > 65536:
        raise _BadRequest(413, "request body too large")
    if int(length):
        reader.read(int(length))  # a GET's body is read and ignored
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection
    if version == "HTTP/1.0":
        keep = "keep-alive" in connection
    path = target.split("?", 1)[0]
    return Request(method, path, headers), keep


class HttpServer:
    """Binds at construction (so a bad address fails before anything starts); ``serve()`` runs
    the accept loop until ``close()``."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self._handler = handler
        self._ssl = ssl_context
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(64)
        except OSError:
            self._socket.close()
            raise
        # close() wakes accept() at once (shutdown of a listening socket); the timeout is only
        # a backstop where a platform would not.
        self._socket.settimeout(1.0)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.port = int(self._socket.getsockname()[1])

    def serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, address = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                log.exception("accept failed")
                time.sleep(0.1)
                continue
            threading.Thread(
                target=self._serve_connection,
                args=(connection, address),
                name="http-connection",
                daemon=True,
            ).start()

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._closing.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def _serve_connection(self, connection: socket.socket, address: object) -> None:
        connection.settimeout(IDLE_TIMEOUT_S)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                connection = self._ssl.wrap_socket(connection, server_side=True)
        except OSError as error:  # ssl.SSLError is an OSError: a failed handshake
            log.debug("%s: %s", address, error)
            connection.close()
            return
        with self._lock:
            self._connections.add(connection)
        try:
            self._exchange(connection, address)
        except OSError as error:  # reset, timed out, closed by close()
            log.debug("%s: %s", address, error)
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _exchange(self, connection: socket.socket, address: object) -> None:
        reader = connection.makefile("rb")
        try:
            while not self._closing.is_set():
                try:
                    got = read_request(reader)
                except _BadRequest as bad:
                    log.debug("%s: %s", address, bad)
                    response = Response(bad.status, f"{bad}\n".encode())
                    connection.sendall(render(response, close=True))
                    return
                if got is None:
                    return
                request, keep = got
                if request.method not in ("GET", "HEAD"):
                    allow = (("Allow", "GET, HEAD"),)
                    response = Response(405, b"only GET and HEAD\n", headers=allow)
                    connection.sendall(render(response, close=True))
                    return
                try:
                    response = self._handler(request)
                except Exception:
                    log.exception("%s %s failed", request.method, request.path)
                    response = Response(500, b"internal error\n")
                connection.sendall(
                    render(response, head_only=request.method == "HEAD", close=not keep)
                )
                log.debug("%s %s %s %d", address, request.method, request.path, response.status)
                if not keep:
                    return
        finally:
            reader.close()
