"""``grpc_h2`` against real grpcio: our server with grpcio's client (the kubelet's side), and our
unary client with grpcio's server — statuses, errors, streaming, cancel and deadline, flow
control past the 64 KiB window, several streams and connections, stop and serve again."""

from __future__ import annotations

import errno
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from gpu_operator.grpc_h2.client import unary_call
from gpu_operator.grpc_h2.server import Context, Method, Server
from gpu_operator.grpc_h2.status import RpcError, StatusCode

pytestmark = pytest.mark.timeout(30)
BIG = bytes(range(256)) * 4096 * 3  # 3 MiB: many times the initial 64 KiB window


def same(data: bytes) -> bytes:
    return data


class Service:
    """The test service: echo, errors, a sized reply, and a stream fed by ``feed``."""

    def __init__(self) -> None:
        self.feeds: dict[bytes, queue.Queue[bytes | None]] = {}
        self.feed = self.of(b"")
        """What ``Watch`` streams: its request names the feed."""
        self.streams_ended: queue.Queue[str] = queue.Queue()
        self.streams_started = threading.Semaphore(0)

    def of(self, name: bytes) -> queue.Queue[bytes | None]:
        return self.feeds.setdefault(name, queue.Queue())  # atomic: threads share it

    def echo(self, request: bytes, context: Context) -> bytes:
        return request

    def size(self, request: bytes, context: Context) -> bytes:
        return len(request).to_bytes(8, "big")

    def big(self, request: bytes, context: Context) -> bytes:
        return BIG

    def boom(self, request: bytes, context: Context) -> bytes:
        raise RuntimeError("boom")

    def refuse(self, request: bytes, context: Context) -> bytes:
        context.abort(StatusCode.INVALID_ARGUMENT, "unknown device: GPU-é 100% ✓")

    def watch(self, request: bytes, context: Context) -> Iterator[bytes]:
        self.streams_started.release()
        try:
            while context.is_active():
                try:
                    item = self.of(request).get(timeout=0.05)
                except queue.Empty:
                    continue
                if item is None:
                    return
                yield item
        finally:
            self.streams_ended.put("cancelled" if not context.is_active() else "ended")

    def broken_stream(self, request: bytes, context: Context) -> Iterator[bytes]:
        yield b"first"
        raise ValueError("stream broke")

    def methods(self) -> dict[str, Method]:
        unary = {
            "Echo": self.echo,
            "Size": self.size,
            "Big": self.big,
            "Boom": self.boom,
            "Refuse": self.refuse,
        }
        out = {f"/test.Svc/{name}": Method(fn, same, same) for name, fn in unary.items()}
        out["/test.Svc/Watch"] = Method(self.watch, same, same, streaming=True)
        out["/test.Svc/Broken"] = Method(self.broken_stream, same, same, streaming=True)
        return out


@pytest.fixture
def sockets_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="h2-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def served(sockets_dir: Path) -> Iterator[tuple[Service, Server]]:
    service = Service()
    server = Server(sockets_dir / "svc.sock", service.methods(), name="test-h2")
    server.start()
    yield service, server
    service.feed.put(None)
    server.stop()


def channel(server: Server) -> grpc.Channel:
    return grpc.insecure_channel(f"unix://{server.path}", [("grpc.use_local_subchannel_pool", 1)])


def unary(ch: grpc.Channel, name: str) -> Callable[..., Any]:
    call: Callable[..., Any] = ch.unary_unary(f"/test.Svc/{name}")
    return call


def test_a_unary_call_returns_the_handlers_reply(served: tuple[Service, Server]) -> None:
    _, server = served
    with channel(server) as ch:
        assert unary(ch, "Echo")(b"hello", timeout=5) == b"hello"
        assert unary(ch, "Echo")(b"", timeout=5) == b""


def test_a_handlers_exception_is_unknown_with_its_message_as_grpcio_says_it(
    served: tuple[Service, Server],
) -> None:
    _, server = served
    with channel(server) as ch, pytest.raises(grpc.RpcError) as caught:
        unary(ch, "Boom")(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert caught.value.details() == "Exception calling application: boom"


def test_abort_gives_its_code_and_message_percent_encoded_on_the_wire(
    served: tuple[Service, Server],
) -> None:
    _, server = served
    with channel(server) as ch, pytest.raises(grpc.RpcError) as caught:
        unary(ch, "Refuse")(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "unknown device: GPU-é 100% ✓"


def test_an_unknown_method_is_unimplemented(served: tuple[Service, Server]) -> None:
    _, server = served
    with channel(server) as ch, pytest.raises(grpc.RpcError) as caught:
        ch.unary_unary("/test.Svc/Nope")(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with channel(server) as ch, pytest.raises(grpc.RpcError) as streamed:
        list(ch.unary_stream("/other.Svc/Watch")(b"", timeout=5))
    assert streamed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_replies_and_requests_past_the_flow_control_window_arrive_whole(
    served: tuple[Service, Server],
) -> None:
    _, server = served
    with channel(server) as ch:
        assert unary(ch, "Big")(b"", timeout=10) == BIG
        assert unary(ch, "Size")(BIG, timeout=10) == len(BIG).to_bytes(8, "big")
        assert unary(ch, "Echo")(BIG, timeout=10) == BIG


def test_a_stream_pushes_each_update_and_ends_with_ok(served: tuple[Service, Server]) -> None:
    service, server = served
    with channel(server) as ch:
        stream = ch.unary_stream("/test.Svc/Watch")(b"", timeout=10)
        service.feed.put(b"one")
        assert next(stream) == b"one"
        service.feed.put(b"two")
        assert next(stream) == b"two"
        service.feed.put(None)
        assert list(stream) == []
        assert stream.code() == grpc.StatusCode.OK
    assert service.streams_ended.get(timeout=5) == "ended"


def test_a_client_cancel_ends_the_stream_on_the_server(served: tuple[Service, Server]) -> None:
    service, server = served
    with channel(server) as ch:
        stream = ch.unary_stream("/test.Svc/Watch")(b"")
        service.feed.put(b"one")
        assert next(stream) == b"one"
        stream.cancel()
        assert service.streams_ended.get(timeout=5) == "cancelled"


def test_the_clients_deadline_ends_the_stream_on_both_sides(
    served: tuple[Service, Server],
) -> None:
    service, server = served
    with channel(server) as ch:
        stream = ch.unary_stream("/test.Svc/Watch")(b"", timeout=0.5)
        with pytest.raises(grpc.RpcError) as caught:
            list(stream)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert service.streams_ended.get(timeout=5) == "cancelled"


def test_a_stream_that_raises_ends_unknown_after_what_it_sent(
    served: tuple[Service, Server],
) -> None:
    _, server = served
    with channel(server) as ch:
        stream = ch.unary_stream("/test.Svc/Broken")(b"", timeout=5)
        assert next(stream) == b"first"
        with pytest.raises(grpc.RpcError) as caught:
            next(stream)
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert caught.value.details() == "Exception iterating responses: stream broke"


def test_several_streams_and_connections_at_once(served: tuple[Service, Server]) -> None:
    service, server = served
    channels = [channel(server) for _ in range(3)]
    try:
        streams = [
            ch.unary_stream("/test.Svc/Watch")(b"%d" % n, timeout=20)
            for n, ch in enumerate(channels * 2)
        ]
        for _ in streams:
            assert service.streams_started.acquire(timeout=5)
        with ThreadPoolExecutor(8) as pool:
            sizes = list(
                pool.map(lambda i: unary(channels[i % 3], "Big")(b"", timeout=20), range(8))
            )
        assert sizes == [BIG] * 8
        for n, _ in enumerate(streams):
            service.of(b"%d" % n).put(b"item %d" % n)
        assert [next(stream) for stream in streams] == [b"item %d" % n for n in range(6)]
        for stream in streams:
            stream.cancel()
        assert sorted(service.streams_ended.get(timeout=5) for _ in streams) == ["cancelled"] * 6
    finally:
        for ch in channels:
            ch.close()


def test_stop_ends_open_streams_and_the_path_can_be_served_again(
    served: tuple[Service, Server],
) -> None:
    service, server = served
    with channel(server) as ch:
        stream = ch.unary_stream("/test.Svc/Watch")(b"", timeout=20)
        assert service.streams_started.acquire(timeout=5)
        server.stop()
        with pytest.raises(grpc.RpcError) as caught:
            list(stream)
        assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert service.streams_ended.get(timeout=5) == "cancelled"
    assert not [t for t in threading.enumerate() if t.name.startswith("test-h2")]
    server.path.unlink()
    again = Server(server.path, service.methods(), name="test-h2")
    again.start()
    try:
        with channel(again) as ch:
            assert unary(ch, "Echo")(b"back", timeout=5) == b"back"
    finally:
        again.stop()


def test_stop_while_streams_are_arriving_ends_them_all(sockets_dir: Path) -> None:
    # A streaming call's thread may be starting when stop runs (it once joined one not yet
    # started), a call may still be on its way (grpcio retried one the GOAWAY said was never
    # started, past its deadline): stop still ends every call and raises nothing.
    for n in range(15):
        service = Service()
        server = Server(sockets_dir / f"s{n}.sock", service.methods(), name="test-h2")
        server.start()
        with channel(server) as ch:
            streams = [ch.unary_stream("/test.Svc/Watch")(b"", timeout=20) for _ in range(3)]
            assert service.streams_started.acquire(timeout=5)
            server.stop(grace=0.05)
            for stream in streams:
                with pytest.raises(grpc.RpcError):
                    list(stream)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-h2")]


def test_a_path_in_use_is_the_bind_error(served: tuple[Service, Server]) -> None:
    service, server = served
    with pytest.raises(OSError, match="in use") as caught:
        Server(server.path, service.methods()).start()
    assert caught.value.errno == errno.EADDRINUSE


def test_one_thread_serves_every_connection_and_one_more_per_open_stream(
    served: tuple[Service, Server],
) -> None:
    service, server = served
    with channel(server) as a, channel(server) as b:
        assert unary(a, "Echo")(b"x", timeout=5) == b"x"
        assert unary(b, "Echo")(b"x", timeout=5) == b"x"
        streams = [a.unary_stream("/test.Svc/Watch")(b"", timeout=20) for _ in range(2)]
        for _ in streams:
            assert service.streams_started.acquire(timeout=5)
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("test-h2"))
        assert names == ["test-h2", "test-h2-stream", "test-h2-stream"]
        for stream in streams:
            stream.cancel()


# --- our client against grpcio's server ------------------------------------------------


@pytest.fixture
def grpcio_server(sockets_dir: Path) -> Iterator[Path]:
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        if request == b"refuse":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such pod: é 100%")
        return BIG if request == b"big" else request

    handler = grpc.method_handlers_generic_handler(
        "test.Svc", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((handler,))
    path = sockets_dir / "grpcio.sock"
    server.add_insecure_port(f"unix://{path}")
    server.start()
    yield path
    server.stop(None).wait(2)


def test_our_client_reads_grpcios_replies_and_statuses(grpcio_server: Path) -> None:
    assert unary_call(grpcio_server, "/test.Svc/Echo", b"hi", 5) == b"hi"
    assert unary_call(grpcio_server, "/test.Svc/Echo", b"big", 10) == BIG
    with pytest.raises(RpcError) as refused:
        unary_call(grpcio_server, "/test.Svc/Echo", b"refuse", 5)
    assert refused.value.code == StatusCode.NOT_FOUND
    assert refused.value.details == "no such pod: é 100%"
    assert str(refused.value) == "NOT_FOUND: no such pod: é 100%"
    with pytest.raises(RpcError) as missing:
        unary_call(grpcio_server, "/test.Svc/Nope", b"", 5)
    assert missing.value.code == StatusCode.UNIMPLEMENTED


def test_our_client_and_server_together(served: tuple[Service, Server]) -> None:
    _, server = served
    assert unary_call(server.path, "/test.Svc/Big", b"", 10) == BIG
    with pytest.raises(RpcError) as caught:
        unary_call(server.path, "/test.Svc/Boom", b"", 5)
    assert (caught.value.code, caught.value.details) == (
        StatusCode.UNKNOWN,
        "Exception calling application: boom",
    )


def test_a_reset_after_the_reply_and_a_ping_leave_the_connection_serving(
    served: tuple[Service, Server],
) -> None:
    # What grpc-go (the real kubelet) may do that grpcio does not: RST_STREAM a stream whose
    # reply it has read, PING; the connection must go on serving.
    import h2.config
    import h2.connection
    import h2.events

    _, server = served
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/test.Svc/Echo"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]

    def call(sock: socket.socket, message: bytes) -> tuple[int, bytes, dict[bytes, bytes]]:
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers)
        conn.send_data(stream, len(message).to_bytes(5, "big") + message, end_stream=True)
        sock.sendall(conn.data_to_send())
        body, trailers, ended = b"", {}, False
        while not ended:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers or ())
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            sock.sendall(conn.data_to_send())
        return stream, body, trailers

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(server.path))
        conn.initiate_connection()
        stream, body, trailers = call(sock, b"one")
        assert (body, trailers[b"grpc-status"]) == (b"\0\0\0\0\3one", b"0")
        # RST_STREAM(CANCEL) as raw bytes: h2's own client won't reset a stream it saw end.
        sock.sendall(b"\0\0\4\3\0" + stream.to_bytes(4, "big") + (8).to_bytes(4, "big"))
        conn.ping(b"12345678")
        sock.sendall(conn.data_to_send())
        _, body, trailers = call(sock, b"two")
        assert (body, trailers[b"grpc-status"]) == (b"\0\0\0\0\3two", b"0")
