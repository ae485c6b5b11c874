"""The exporter's own HTTP/1.1 server over real sockets: keep-alive, HEAD, what it refuses and
how, HTTP/1.0 and ``Connection: close``, and a bad request never stopping the server."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from gpu_operator.exporter.httpd import (
    MAX_LINE,
    HttpServer,
    Request,
    Response,
    http_date,
    read_request,
)

SEEN: list[Request] = []


def handler(request: Request) -> Response:
    SEEN.append(request)
    if request.path == "/boom":
        raise RuntimeError("handler failed")
    return Response(200, f"you asked for {request.path}\n".encode(), "text/plain; version=0.0.4")


@pytest.fixture
def server() -> Iterator[HttpServer]:
    SEEN.clear()
    srv = HttpServer("127.0.0.1", 0, handler)
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    yield srv
    srv.close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def raw(server: HttpServer, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_many_requests_share_one_kept_alive_connection(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for path in ("/metrics", "/metrics?x=1", "/health"):
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == f"you asked for {path.split('?')[0]}\n".encode()
        assert response.getheader("Content-Type") == "text/plain; version=0.0.4"
        assert response.getheader("Connection") is None
    connection.close()
    assert [r.path for r in SEEN] == ["/metrics", "/metrics", "/health"]


def test_headers_reach_the_handler_lower_cased(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/", headers={"Authorization": "Basic eDp5"})
    connection.getresponse().read()
    connection.close()
    assert SEEN[0].headers["authorization"] == "Basic eDp5"
    assert SEEN[0].method == "GET"


def test_head_sends_the_headers_of_get_without_the_body(server: HttpServer) -> None:
    reply = raw(server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    length = len(b"you asked for /metrics\n")  # what GET would send
    assert f"\r\nContent-Length: {length}\r\n".encode() in head + b"\r\n"
    assert body == b""


def test_http_1_0_and_connection_close_end_the_connection_after_the_reply(
    server: HttpServer,
) -> None:
    for request in (
        b"GET /a HTTP/1.0\r\n\r\n",
        b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
    ):
        reply = raw(server, request)  # returns only because the server closed
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nConnection: close\r\n" in reply
        assert reply.endswith(b"you asked for /a\n")


def test_two_pipelined_requests_get_two_replies_in_order(server: HttpServer) -> None:
    reply = raw(server, b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert reply.index(b"/one\n") < reply.index(b"/two\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"POST /metrics HTTP/1.1\r\n\r\n", b"405 Method Not Allowed", id="POST"),
        pytest.param(b"GARBAGE\r\n\r\n", b"400 Bad Request", id="no request line"),
        pytest.param(b"GET / HTTP/2.0\r\n\r\n", b"505 HTTP Version Not Supported", id="HTTP/2"),
        pytest.param(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"400 Bad Request", id="bad header"),
        pytest.param(
            b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n",
            b"431 Request Header Fields Too Large",
            id="header too long",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"400 Bad Request",
            id="chunked body",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n",
            b"413 Content Too Large",
            id="huge body",
        ),
    ],
)
def test_what_is_not_a_plain_get_is_refused_and_the_connection_closed(
    server: HttpServer, request_bytes: bytes, status: bytes
) -> None:
    reply = raw(server, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status + b"\r\n"), reply[:80]
    assert b"\r\nConnection: close\r\n" in reply
    assert SEEN == []
    # and the server still serves the next client
    assert raw(server, b"GET /after HTTP/1.0\r\n\r\n").endswith(b"you asked for /after\n")


def test_a_failing_handler_is_a_500_and_the_server_goes_on(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/boom")
    response = connection.getresponse()
    assert (response.status, response.read()) == (500, b"internal error\n")
    connection.request("GET", "/fine")
    assert connection.getresponse().read() == b"you asked for /fine\n"
    connection.close()


def test_a_get_body_is_read_and_ignored_so_the_next_request_parses(server: HttpServer) -> None:
    reply = raw(
        server,
        b"GET /one HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /two HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert [r.path for r in SEEN] == ["/one", "/two"]


def test_close_ends_open_kept_alive_connections(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(b"GET /x HTTP/1.1\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200 OK")
        server.close()
        assert conn.recv(65536) == b""  # the server's side is shut down, not left hanging


def test_a_taken_port_is_an_oserror_at_construction() -> None:
    first = HttpServer("127.0.0.1", 0, handler)
    try:
        with pytest.raises(OSError, match="in use"):
            HttpServer("127.0.0.1", first.port, handler)
    finally:
        first.close()


def test_the_date_header_is_rfc_9110_whatever_the_locale() -> None:
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_empty_lines_before_a_request_are_skipped() -> None:
    import io

    got = read_request(io.BufferedReader(io.BytesIO(b"\r\n\r\nGET /m?q HTTP/1.1\r\nA: b\r\n\r\n")))
    assert got == (Request("GET", "/m", {"a": "b"}), True)
    assert read_request(io.BufferedReader(io.BytesIO(b""))) is None
