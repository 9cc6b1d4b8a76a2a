"""The hub's TCP transports: ``write()`` sends at once when nothing is queued, else queues.

Real sockets on 127.0.0.1, a real Twisted protocol on the hub's reactor, and
plain sockets or asyncio streams as peers.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
from typing import Any

import pytest
from _twisted_helpers import LOOPS, reactor, run_twisted
from twisted.internet import error, interfaces, protocol, tcp
from zope.interface import implementer

import bridges

pytestmark = pytest.mark.timeout(60)


def _settle(waiter: list[asyncio.Future[Any]], value: Any = None) -> None:
    """Resolve the future a test awaits (created by the test on the hub's loop)."""
    if waiter and not waiter[0].done():
        waiter[0].set_result(value)


def _waiter(holder: list[asyncio.Future[Any]]) -> asyncio.Future[Any]:
    holder.append(asyncio.get_running_loop().create_future())
    return holder[0]


def _peer_reads_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What ``sock`` holds within ``seconds`` (blocking the loop: nothing else may send it)."""
    ready, _, _ = select.select([sock], [], [], seconds)
    return sock.recv(65536) if ready else None


def _received_until_eof(
    kind: type[protocol.Protocol], loop_factory: str, send: bytes = b""
) -> bytes:
    """Serve ``kind`` on the hub; what an asyncio client that sends ``send`` reads until EOF.

    A reset counts as the end (what arrived before it is returned).
    """

    async def main() -> bytes:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(kind), interface="127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(send)
            received = b""
            try:
                while chunk := await asyncio.wait_for(reader.read(65536), 10):
                    received += chunk
            except ConnectionResetError:
                pass
            writer.close()
            return received
        finally:
            await bridges.awaitable(port.stopListening())

    return run_twisted(main, loop_factory=loop_factory)  # type: ignore[no-any-return]


async def _server_transport() -> tuple[Any, Any]:
    """Listen on the hub's reactor and connect to it: (the port, the accepted connection).

    The asyncio client is closed at once; the caller stops the port.
    """
    transports: list[asyncio.Future[Any]] = []

    class Keep(protocol.Protocol):
        def connectionMade(self) -> None:
            _settle(transports, self.transport)

    port = reactor().listenTCP(0, protocol.Factory.forProtocol(Keep), interface="127.0.0.1")
    made = _waiter(transports)
    _, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
    transport = await asyncio.wait_for(made, 10)
    writer.close()
    return port, transport


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_write_with_nothing_queued_is_on_the_wire_when_write_returns(loop_factory: str) -> None:
    peers: list[socket.socket] = []
    seen: list[asyncio.Future[Any]] = []

    class Probe(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(b"echo:" + data)
            # Still inside dataReceived: the reactor has not had a chance to flush anything.
            on_the_wire = _peer_reads_within(peers[0], 2.0)
            _settle(seen, [on_the_wire, self.transport in reactor().getWriters()])

    async def main() -> list[Any]:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Probe), interface="127.0.0.1")
        sock = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        peers.append(sock)
        try:
            done = _waiter(seen)
            sock.sendall(b"ping")
            return await asyncio.wait_for(done, 10)  # type: ignore[no-any-return]
        finally:
            sock.close()
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == [b"echo:ping", False]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_write_after_a_queued_one_waits_behind_it_so_the_order_holds(loop_factory: str) -> None:
    payload = bytes(range(256)) * (8 * 4096)  # 8 MiB: more than the kernel takes at once

    class Blast(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.write(payload)
            self.transport.write(b"the end")
            self.transport.loseConnection()

    expected = payload + b"the end"
    assert _received_until_eof(Blast, loop_factory) == expected


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_write_that_fails_returns_and_the_connection_is_lost_afterwards(
    loop_factory: str,
) -> None:
    events: list[Any] = []
    writing = [False]
    connected: list[asyncio.Future[Any]] = []
    lost: list[asyncio.Future[Any]] = []

    class Quiet(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.pauseProducing()  # no read notices the reset first
            _settle(connected, self)

        def connectionLost(self, reason: Any = None) -> None:
            events.append(("lost", reason.type, "inside write()" if writing[0] else "later"))
            _settle(lost)

    async def main() -> list[Any]:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Quiet), interface="127.0.0.1")
        made, gone = _waiter(connected), _waiter(lost)
        sock = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        try:
            server = await asyncio.wait_for(made, 10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset: the server's next send fails
            await asyncio.sleep(0.05)
            writing[0] = True
            server.transport.write(b"x" * 100)
            writing[0] = False
            events.append("write() returned")
            await asyncio.wait_for(gone, 10)
            return events
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == [
        "write() returned",
        ("lost", error.ConnectionLost, "later"),
    ]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_reset_met_by_a_write_is_a_lost_connection_not_a_clean_close(loop_factory: str) -> None:
    reasons: list[asyncio.Future[Any]] = []
    connected: list[asyncio.Future[Any]] = []

    class Server(protocol.Protocol):
        def connectionMade(self) -> None:
            _settle(connected, self)

        def connectionLost(self, reason: Any = None) -> None:
            _settle(reasons, reason.type)

    async def main() -> Any:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Server), interface="127.0.0.1")
        made, lost = _waiter(connected), _waiter(reasons)
        sock = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        try:
            server = await asyncio.wait_for(made, 10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, which the write below meets before any read does
            server.transport.write(b"too late")
            return await asyncio.wait_for(lost, 10)
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) is error.ConnectionLost


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_write_after_abort_connection_is_dropped_as_twisted_drops_it(loop_factory: str) -> None:
    class Abort(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.abortConnection()
            self.transport.write(b"written after the abort")

    assert _received_until_eof(Abort, loop_factory, send=b"go") == b""


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_connection_given_a_do_read_of_its_own_is_read_with_it_until_it_is_deleted(
    loop_factory: str,
) -> None:
    reads: list[str] = []
    done: list[asyncio.Future[Any]] = []

    class Own(protocol.Protocol):
        def connectionMade(self) -> None:
            transport = self.transport

            def own_do_read() -> None:
                reads.append("own")
                del transport.doRead  # the data is still there: Twisted's doRead reads it

            transport.doRead = own_do_read

        def dataReceived(self, data: bytes) -> None:
            reads.append(data.decode())
            _settle(done)

    async def main() -> list[str]:
        port = reactor().listenTCP(0, protocol.Factory.forProtocol(Own), interface="127.0.0.1")
        try:
            finished = _waiter(done)
            _, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            writer.write(b"data")
            await asyncio.wait_for(finished, 10)
            writer.close()
            return reads
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == ["own", "data"]


def test_do_read_and_do_write_of_a_hub_connection_behave_as_attributes_of_the_instance() -> None:
    def own() -> None:
        """A replacement."""

    async def main() -> list[object]:
        port, transport = await _server_transport()
        try:
            seen: list[object] = [type(transport).doRead is tcp.Connection.doRead]
            seen.append(transport.doWrite == tcp.Connection.doWrite.__get__(transport))
            with pytest.raises(AttributeError):
                del transport.doWrite  # nothing of its own to delete
            transport.doWrite = own
            seen.append(transport.doWrite is own)
            del transport.doWrite
            seen.append(transport.doWrite == tcp.Connection.doWrite.__get__(transport))
            return seen
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main) == [True, True, True, True]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_pull_producer_is_asked_for_more_after_each_of_its_writes(loop_factory: str) -> None:
    @implementer(interfaces.IPullProducer)
    class Chunks:
        def __init__(self, transport: Any) -> None:
            self.transport = transport
            self.left = 5

        def resumeProducing(self) -> None:
            self.left -= 1
            self.transport.write(b"chunk %d;" % self.left)
            if not self.left:
                self.transport.unregisterProducer()
                self.transport.loseConnection()

        def stopProducing(self) -> None:
            pass

    class Produce(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.registerProducer(Chunks(self.transport), False)

    expected = b"chunk 4;chunk 3;chunk 2;chunk 1;chunk 0;"
    assert _received_until_eof(Produce, loop_factory) == expected


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_pull_producer_registered_after_a_write_is_asked_again_once_it_is_out(
    loop_factory: str,
) -> None:
    @implementer(interfaces.IPullProducer)
    class SecondTime:
        def __init__(self, transport: Any) -> None:
            self.transport = transport
            self.calls = 0

        def resumeProducing(self) -> None:
            self.calls += 1  # the first call comes from registerProducer: nothing yet
            if self.calls == 2:
                self.transport.write(b"tail")
                self.transport.unregisterProducer()
                self.transport.loseConnection()

        def stopProducing(self) -> None:
            pass

    class HeadThenProducer(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.write(b"head;")
            self.transport.registerProducer(SecondTime(self.transport), False)

    assert _received_until_eof(HeadThenProducer, loop_factory) == b"head;tail"


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_write_after_lose_write_connection_still_precedes_the_half_close(
    loop_factory: str,
) -> None:
    got: list[bytes] = []
    second: list[asyncio.Future[Any]] = []

    @implementer(interfaces.IHalfCloseableProtocol)
    class HalfClose(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            got.append(data)
            if len(got) == 2:
                _settle(second)
            if len(got) == 1:
                self.transport.write(b"last words")
                self.transport.loseWriteConnection()
                self.transport.write(b", queued before the FIN")  # as in Twisted

        def readConnectionLost(self) -> None:
            self.transport.loseConnection()

        def writeConnectionLost(self) -> None:
            pass

    async def main() -> tuple[bytes, list[bytes]]:
        factory = protocol.Factory.forProtocol(HalfClose)
        port = reactor().listenTCP(0, factory, interface="127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
            both = _waiter(second)
            writer.write(b"first")
            received = await asyncio.wait_for(reader.read(), 10)  # until the server's EOF
            writer.write(b"second")  # the server still reads
            await asyncio.wait_for(both, 10)
            writer.close()
            return received, got
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == (
        b"last words, queued before the FIN",
        [b"first", b"second"],
    )


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_connect_tcp_clients_are_twisted_clients_whose_writes_arrive(loop_factory: str) -> None:
    class Hello(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.write(b"hello from the client")
            self.transport.loseConnection()

    async def main() -> tuple[bool, bytes]:
        received = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            factory = protocol.ClientFactory.forProtocol(Hello)
            connector = reactor().connectTCP("127.0.0.1", port, factory)
            data = await asyncio.wait_for(received, 10)
            return isinstance(connector.transport, tcp.Client), data
        finally:
            server.close()

    assert run_twisted(main, loop_factory=loop_factory) == (True, b"hello from the client")


def test_listen_tcp_connections_are_twisted_servers() -> None:
    async def main() -> bool:
        port, transport = await _server_transport()
        try:
            return isinstance(port, tcp.Port) and isinstance(transport, tcp.Server)
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main)


def _tls_client(port: int) -> tuple[bytes, bytes]:
    """Ask for STARTTLS in clear, then talk TLS (a blocking client, run in a thread)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"STARTTLS\n")
        clear = b""
        while not clear.endswith(b"\n"):
            clear += sock.recv(100)
        with context.wrap_socket(sock) as tls:
            tls.sendall(b"secret")
            return clear, tls.recv(100)


def _self_signed_pem() -> bytes:
    """A key and a self-signed certificate for 127.0.0.1, PEM, made with ``cryptography``.

    Not with Twisted's ``KeyPair.generate().selfSignedCert()``: it uses
    pyOpenSSL's ``X509Req``, which newer pyOpenSSL releases dropped while
    older Twisted releases (our lowest supported) still call it.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_start_tls_after_a_write_in_clear_encrypts_what_follows(loop_factory: str) -> None:
    pytest.importorskip("OpenSSL")
    from twisted.internet import ssl

    certificate = ssl.PrivateCertificate.loadPEM(_self_signed_pem())

    class StartTLS(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            if data == b"STARTTLS\n":
                self.transport.write(b"go ahead\n")
                self.transport.startTLS(certificate.options())
            else:
                self.transport.write(b"tls:" + data)

    async def main() -> tuple[bytes, bytes]:
        factory = protocol.Factory.forProtocol(StartTLS)
        port = reactor().listenTCP(0, factory, interface="127.0.0.1")
        try:
            return await asyncio.to_thread(_tls_client, port.getHost().port)
        finally:
            await bridges.awaitable(port.stopListening())

    assert run_twisted(main, loop_factory=loop_factory) == (b"go ahead\n", b"tls:secret")
