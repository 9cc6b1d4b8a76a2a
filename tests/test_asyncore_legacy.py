"""Real legacy servers on the hub: smtpd, asynchat, waitress; asyncio code talking to them."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import warnings
from typing import Any

import pytest
from _asyncore_helpers import LOOPS, asynchat, asyncore, ba, run

import bridges

pytestmark = pytest.mark.timeout(60)

if importlib.util.find_spec("waitress") is not None:
    # Imported before any hub starts, so the hub takes wasyncore over automatically.
    from waitress import wasyncore
needs_waitress = pytest.mark.skipif(
    importlib.util.find_spec("waitress") is None, reason="waitress is not installed"
)


# -- an asynchat line protocol with producers -----------------------------------------


class ChatSession(asynchat.async_chat):
    """A line protocol: ECHO, BIG (a producer), SAY (to every other session), ASK, QUIT."""

    def __init__(self, sock: Any, server: ChatServer) -> None:
        super().__init__(sock)
        self.server = server
        self.buffer: list[bytes] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.set_terminator(b"\n")

    def collect_incoming_data(self, data: bytes) -> None:
        self.buffer.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.buffer)
        self.buffer = []
        command, _, rest = line.partition(b" ")
        if command == b"ECHO":
            self.push(rest + b"\n")
        elif command == b"BIG":
            size = int(rest)
            self.push_with_producer(asynchat.simple_producer(b"y" * size + b"\n", 4096))
        elif command == b"SAY":
            for other in self.server.sessions:
                if other is not self and other.connected:
                    other.push(b"HEARD " + rest + b"\n")  # another dispatcher's output
        elif command == b"ASK":
            # A handler starts asyncio work and pushes its answer when it is done.
            task = asyncio.ensure_future(self.answer(rest))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif command == b"QUIT":
            self.push(b"BYE\n")
            self.close_when_done()

    async def answer(self, question: bytes) -> None:
        await asyncio.sleep(0.01)
        self.push(b"ANSWER " + question.upper() + b"\n")


class ChatServer(asyncore.dispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[ChatSession] = []
        self.create_socket()
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(64)
        self.port: int = self.socket.getsockname()[1]

    def handle_accepted(self, sock: Any, addr: Any) -> None:
        self.sessions.append(ChatSession(sock, self))


async def chat_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=2**24)


async def ask(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], line: bytes) -> bytes:
    reader, writer = streams
    writer.write(line + b"\n")
    await writer.drain()
    return (await reader.readline()).rstrip(b"\n")


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_an_asynchat_line_protocol_answers_an_asyncio_client(loop_factory: Any) -> None:
    async def main() -> list[bytes]:
        server = ChatServer()
        client = await chat_client(server.port)
        answers = [await ask(client, b"ECHO hello"), await ask(client, b"ECHO again")]
        answers.append(await ask(client, b"QUIT"))
        answers.append(await client[0].read())  # the server closed when done
        server.close()
        return answers

    assert run(main, loop_factory) == [b"hello", b"again", b"BYE", b""]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_an_asynchat_producer_larger_than_the_socket_buffer_arrives_whole(
    loop_factory: Any,
) -> None:
    size = 8 * 1024 * 1024

    async def main() -> bytes:
        server = ChatServer()
        client = await chat_client(server.port)
        got = await ask(client, b"BIG %d" % size)
        server.close()
        return got

    assert run(main, loop_factory) == b"y" * size


def test_a_push_from_one_session_reaches_another_sessions_client() -> None:
    async def main() -> bytes:
        server = ChatServer()
        alice = await chat_client(server.port)
        bob = await chat_client(server.port)
        await ask(bob, b"ECHO ready")  # bob's session exists
        alice[1].write(b"SAY hi bob\n")
        heard = await asyncio.wait_for(bob[0].readline(), 5)
        server.close()
        return heard

    assert run(main) == b"HEARD hi bob\n"


def test_a_dispatcher_handler_can_start_asyncio_work_and_push_its_result() -> None:
    async def main() -> bytes:
        server = ChatServer()
        client = await chat_client(server.port)
        answer = await ask(client, b"ASK why")
        server.close()
        return answer

    assert run(main) == b"ANSWER WHY"


class LineClient(asynchat.async_chat):
    """An asyncore client with an awaitable API: each request's future resolves on its reply.

    The pattern for asyncio code that talks to a dispatcher-based service
    through the service's own client code, in the same process and loop.
    """

    def __init__(self, port: int) -> None:
        super().__init__()
        self.buffer: list[bytes] = []
        self.waiting: list[asyncio.Future[bytes]] = []
        self.set_terminator(b"\n")
        self.create_socket()
        self.connect(("127.0.0.1", port))

    def request(self, line: bytes) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        self.push(line + b"\n")
        return fut

    def collect_incoming_data(self, data: bytes) -> None:
        self.buffer.append(data)

    def found_terminator(self) -> None:
        reply = b"".join(self.buffer)
        self.buffer = []
        fut = self.waiting.pop(0)
        if not fut.done():
            fut.set_result(reply)

    def handle_close(self) -> None:
        for fut in self.waiting:
            if not fut.done():
                fut.set_exception(ConnectionError("the server closed the connection"))
        self.close()


def test_asyncio_code_awaits_replies_through_a_dispatcher_based_client() -> None:
    async def main() -> list[bytes]:
        server = ChatServer()
        client = LineClient(server.port)
        replies = await asyncio.gather(
            client.request(b"ECHO one"), client.request(b"ECHO two"), client.request(b"QUIT")
        )
        await asyncio.wait_for(ba.closed(client), 5)
        server.close()
        return list(replies)

    assert run(main) == [b"one", b"two", b"BYE"]


# -- smtpd ----------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="smtpd left the standard library in 3.12")
def test_stdlib_smtpd_receives_mail_from_smtplib() -> None:
    import smtplib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import smtpd

    received: list[tuple[str, list[str], bytes]] = []

    class Server(smtpd.SMTPServer):
        def process_message(
            self, peer: Any, mailfrom: str, rcpttos: list[str], data: bytes, **kwargs: Any
        ) -> None:
            received.append((mailfrom, rcpttos, data))

    def send(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "alice@example.org",
                ["bob@example.org", "carol@example.org"],
                "Subject: hub\r\n\r\nasyncore on asyncio\r\n",
            )

    async def main() -> None:
        server = Server(("127.0.0.1", 0), None)
        port = server.socket.getsockname()[1]
        await asyncio.get_running_loop().run_in_executor(None, send, port)
        server.close()

    run(main)
    assert len(received) == 1
    mailfrom, rcpttos, data = received[0]
    assert mailfrom == "alice@example.org"
    assert rcpttos == ["bob@example.org", "carol@example.org"]
    assert b"asyncore on asyncio" in data


# -- waitress (wasyncore: a duck-typed asyncore with its own module) -------------------


def hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b"hello from waitress on the hub " + environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def http_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return response


def serve_waitress(socket_map: Any) -> Any:
    from waitress.server import create_server

    return create_server(hello_app, host="127.0.0.1", port=0, map=socket_map, threads=2)


@needs_waitress
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_waitress_serves_wsgi_from_a_socket_map_of_the_hub(loop_factory: Any) -> None:
    async def main() -> bytes:
        server = serve_waitress(ba.SocketMap())
        try:
            return await http_get(server.effective_port, "/one")
        finally:
            server.close()

    response = run(main, loop_factory)
    assert response.startswith(b"HTTP/1.0 200 OK")
    assert response.endswith(b"hello from waitress on the hub /one")


@needs_waitress
def test_waitress_with_its_own_dict_map_is_served_once_the_server_is_awaited() -> None:
    async def main() -> list[bytes]:
        server = serve_waitress(None)  # waitress makes a plain dict map of its own
        serving = asyncio.ensure_future(ba.closed(server))  # adopts the server's map
        responses = [await http_get(server.effective_port, f"/{i}") for i in range(3)]
        server.close()
        await asyncio.wait_for(serving, 5)
        return responses

    responses = run(main)
    assert [r.rsplit(b" ", 1)[-1] for r in responses] == [b"/0", b"/1", b"/2"]


@needs_waitress
def test_wasyncore_loop_inside_the_hub_raises_the_same_bridge_error() -> None:
    async def main() -> None:
        with pytest.raises(ba.HubOwnsLoopError, match=r"waitress\.wasyncore\.loop"):
            wasyncore.loop()

    run(main)
    assert not isinstance(wasyncore.socket_map, ba.SocketMap)


@needs_waitress
def test_wasyncore_exit_now_follows_asyncores_rule() -> None:
    stop = wasyncore.ExitNow("waitress says stop")

    class Stopper(wasyncore.dispatcher):
        def handle_read(self) -> None:
            raise stop

    async def main() -> BaseException:
        import socket

        ours, peer = socket.socketpair()
        dispatcher = Stopper(ours)
        peer.send(b"x")
        with pytest.raises(wasyncore.ExitNow) as caught:
            await asyncio.wait_for(ba.loop(map=wasyncore.socket_map), 5)
        dispatcher.close()
        peer.close()
        return caught.value

    assert run(main) is stop


def test_every_framework_attached_leaves_asyncore_dispatchers_working() -> None:
    async def main() -> bytes:
        server = ChatServer()
        client = await chat_client(server.port)
        reply = await ask(client, b"ECHO auto")
        server.close()
        return reply

    assert bridges.run(main, frameworks="auto") == b"auto"


SIGTERM_SERVICE = """
import sys
sys.path.insert(0, {tests!r})
import bridges
from bridges import asyncore as ba
from _asyncore_helpers import Echo, EchoServer, asyncore

class Loud(Echo):
    def close(self):
        print("closed connection", flush=True)
        super().close()

async def main():
    server = EchoServer(handler=Loud)
    print(server.port, flush=True)
    await ba.loop()

result = bridges.run(main, frameworks=["asyncore"])
print("returned", result, "still open", len(asyncore.socket_map), flush=True)
"""


def test_sigterm_closes_the_dispatchers_of_a_service_with_a_connection_open_and_exits_0() -> None:
    import os
    import signal
    import socket
    import subprocess

    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SERVICE.format(tests=tests)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"in flight")
            assert client.recv(100) == b"in flight"
            proc.send_signal(signal.SIGTERM)
            assert client.recv(100) == b""  # the hub closed the connection
            out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert out.splitlines() == ["closed connection", "returned None still open 0"]
