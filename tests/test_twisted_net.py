"""Twisted networking on the hub, with real sockets on 127.0.0.1 and real clients and servers."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import urllib.request
from typing import Any

import pytest
from _twisted_helpers import LOOPS, reactor, run_twisted
from twisted.internet import abstract, protocol

import bridges

pytestmark = pytest.mark.timeout(60)


def make_site() -> Any:
    from twisted.web import resource, server

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:
            request.setHeader(b"content-type", b"text/plain")
            return b"hello from twisted.web, path " + request.path

    return server.Site(Hello())


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_twisted_web_site_on_the_hub_serves_urllib_and_asyncio_stream_clients(
    loop_factory: str,
) -> None:
    async def main() -> tuple[bytes, bytes]:
        port = reactor().listenTCP(0, make_site(), interface="127.0.0.1")
        number = port.getHost().port
        try:

            def fetch() -> bytes:
                url = f"http://127.0.0.1:{number}/threaded"
                with urllib.request.urlopen(url, timeout=10) as response:
                    return response.read()  # type: ignore[no-any-return]

            from_thread = await asyncio.get_running_loop().run_in_executor(None, fetch)
            reader, writer = await asyncio.open_connection("127.0.0.1", number)
            writer.write(b"GET /streams HTTP/1.0\r\nHost: x\r\n\r\n")
            from_streams = await reader.read()
            writer.close()
            return from_thread, from_streams
        finally:
            await bridges.awaitable(port.stopListening())

    from_thread, from_streams = run_twisted(main, loop_factory=loop_factory)
    assert from_thread == b"hello from twisted.web, path /threaded"
    assert from_streams.startswith(b"HTTP/1.0 200 OK")
    assert from_streams.endswith(b"hello from twisted.web, path /streams")


# Twisted's readBody warns for every response whose transport is its own
# TransportProxyProducer (no abortConnection), whatever the reactor.
@pytest.mark.filterwarnings("ignore:Using readBody with a transport")
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_twisted_agent_fetches_from_an_asyncio_server_in_the_same_loop(loop_factory: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        body = b"asyncio answered " + request.split(b" ")[1]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async def main() -> tuple[int, bytes]:
        from twisted.web.client import Agent, readBody

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        number = server.sockets[0].getsockname()[1]
        try:
            agent = Agent(reactor())
            url = f"http://127.0.0.1:{number}/from-agent".encode()
            response = await bridges.awaitable(agent.request(b"GET", url))
            body = await bridges.awaitable(readBody(response))
            return response.code, body
        finally:
            server.close()
            await server.wait_closed()

    assert run_twisted(main, loop_factory=loop_factory) == (200, b"asyncio answered /from-agent")


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_fifty_asyncio_clients_echo_through_a_twisted_server_without_losing_a_byte(
    loop_factory: str,
) -> None:
    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    async def client(number: int, i: int) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", number)
        ok = True
        for round_trip in range(20):
            payload = f"{i:04d}:{round_trip:04d}".encode().ljust(64, b".")
            writer.write(payload)
            ok = ok and await reader.readexactly(64) == payload
        writer.close()
        return ok

    async def main() -> list[bool]:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
        try:
            return await asyncio.gather(*(client(port.getHost().port, i) for i in range(50)))
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == [True] * 50


class Watcher(abstract.FileDescriptor):
    """A Twisted reader of a raw fd (what Twisted's own selectables look like to the reactor)."""

    def __init__(self, fd: int, reactor: Any) -> None:
        super().__init__(reactor)
        self.fd = fd
        self.reads = 0
        self.read = asyncio.get_running_loop().create_future()

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.reads += 1
        self.stopReading()
        if not self.read.done():
            self.read.set_result(None)


def test_twisted_reading_an_fd_another_framework_owns_is_an_fd_conflict_naming_both() -> None:
    async def main() -> str:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        try:
            hub.add_reader(left, lambda: None, owner="tornado")
            try:
                Watcher(left.fileno(), reactor()).startReading()
            except bridges.FdConflictError as exc:
                return str(exc)
            finally:
                hub.remove_reader(left, owner="tornado")
            return "no conflict"
        finally:
            left.close()
            right.close()

    message = run_twisted(main)
    assert "'tornado'" in message
    assert "'twisted'" in message


def test_the_reactors_fds_are_registered_with_the_hub_under_owner_twisted() -> None:
    async def main() -> tuple[str | None, str | None]:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        try:
            watcher = Watcher(left.fileno(), reactor())
            watcher.startReading()
            while_reading = hub.fd_owners()["readers"].get(left.fileno())
            watcher.stopReading()
            after = hub.fd_owners()["readers"].get(left.fileno())
            return while_reading, after
        finally:
            left.close()
            right.close()

    assert run_twisted(main) == ("twisted", None)


def test_a_regular_file_that_epoll_refuses_is_polled_and_leaves_no_stale_registration() -> None:
    async def main() -> tuple[int, bool]:
        with tempfile.TemporaryFile() as handle:
            handle.write(b"data")
            handle.flush()
            watcher = Watcher(handle.fileno(), reactor())
            watcher.startReading()
            await watcher.read
            return watcher.reads, handle.fileno() in bridges.current_hub().fd_owners()["readers"]

    assert run_twisted(main) == (1, False)


@pytest.mark.parametrize("loop_factory", LOOPS)
@pytest.mark.parametrize("soon_write", [True, False], ids=["soon-write", "wait-writable"])
def test_a_large_write_through_a_full_socket_arrives_whole_and_in_order(
    soon_write: bool, loop_factory: str
) -> None:
    from bridges.twisted._reactor import HubReactor

    payload = bytes(range(256)) * (8 * 4096)  # 8 MiB: far more than a socket buffer

    class Blast(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.write(payload)
            self.transport.loseConnection()

    async def main() -> tuple[int, bool]:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Blast), interface="127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            received = await reader.read()
            writer.close()
            return len(received), received == payload
        finally:
            await bridges.awaitable(port.stopListening())

    original = HubReactor.soonWrite
    HubReactor.soonWrite = soon_write
    try:
        assert run_twisted(main, loop_factory=loop_factory) == (len(payload), True)
    finally:
        HubReactor.soonWrite = original


def test_soon_write_is_used_only_for_twisteds_own_connections_with_their_own_do_write() -> None:
    from twisted.internet import tcp

    from bridges.twisted._writes import _writes_safely_when_not_writable

    class CustomWrite(tcp.Server):
        def doWrite(self) -> None:
            pass

    connection = tcp.Server.__new__(tcp.Server)
    connecting = tcp.Client.__new__(tcp.Client)
    connecting.doWrite = connecting.doConnect  # what a connecting client looks like
    custom = CustomWrite.__new__(CustomWrite)
    plain = Watcher.__new__(Watcher)
    assert _writes_safely_when_not_writable(connection)
    assert not _writes_safely_when_not_writable(connecting)
    assert not _writes_safely_when_not_writable(custom)
    assert not _writes_safely_when_not_writable(plain)


def test_log_events_of_a_connection_carry_its_log_prefix_as_system() -> None:
    from twisted.logger import globalLogPublisher

    systems: list[str] = []

    class Logs(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            from twisted.python import log

            log.msg("got data")
            self.transport.write(data)

    def observe(event: dict[str, Any]) -> None:
        if event.get("message") == ("got data",):
            systems.append(event["system"])

    async def main() -> str:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Logs), interface="127.0.0.1")
        reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
        for _ in range(2):
            writer.write(b"x")
            await reader.readexactly(1)
        writer.close()
        await bridges.awaitable(port.stopListening())
        return "Logs,0,127.0.0.1"

    globalLogPublisher.addObserver(observe)
    try:
        expected = run_twisted(main)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert systems == [expected, expected]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_reply_written_in_data_received_then_lose_connection_arrives_before_eof(
    loop_factory: str,
) -> None:
    class ReplyAndClose(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(b"reply to " + data)
            self.transport.loseConnection()

    async def main() -> bytes:
        factory = protocol.Factory.forProtocol(ReplyAndClose)
        port = reactor().listenTCP(0, factory, interface="127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(b"question")
            answer = await reader.read()  # until EOF
            writer.close()
            return answer
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == b"reply to question"


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_data_relayed_from_one_connection_to_another_in_data_received_arrives_in_order(
    loop_factory: str,
) -> None:
    peers: list[Any] = []
    both_connected: list[asyncio.Event] = []

    class Relay(protocol.Protocol):
        def connectionMade(self) -> None:
            peers.append(self)
            if len(peers) == 2:
                both_connected[0].set()

        def dataReceived(self, data: bytes) -> None:
            for peer in peers:
                if peer is not self:
                    peer.transport.write(data)

    async def main() -> bool:
        both_connected.append(asyncio.Event())
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Relay), interface="127.0.0.1")
        number = port.getHost().port
        try:
            _, sender = await asyncio.open_connection("127.0.0.1", number)
            receiver, receiver_writer = await asyncio.open_connection("127.0.0.1", number)
            await both_connected[0].wait()
            expected = b"".join(b"%05d," % i for i in range(2000))
            for i in range(2000):
                sender.write(b"%05d," % i)
            got = await receiver.readexactly(len(expected))
            sender.close()
            receiver_writer.close()
            return got == expected
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory)
