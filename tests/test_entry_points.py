"""Tornado's ``IOLoop.current().start()``, asyncore's ``loop()`` and a gevent main on the hub.

Each program runs unchanged (after one install line) in a subprocess, serves a
real request on 127.0.0.1 and is stopped the way its users stop it.  What
``install()`` set up is gone once the hub stopped.  A gevent main that blocks
in the process's main greenlet cannot run unchanged (the test below says
why); the one-line change users make instead is tested here too.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import pytest
from _entry_helpers import get, run_script, script, start

pytestmark = pytest.mark.timeout(120)

TORNADO_APP = """
    import bridges.tornado
    bridges.tornado.install(frameworks=["tornado"])

    import asyncio
    from tornado import web
    from tornado.ioloop import IOLoop

    class Hello(web.RequestHandler):
        async def get(self):
            await asyncio.sleep(0.01)  # asyncio on the IOLoop's loop
            self.write(f"hello from {type(IOLoop.current()).__name__}")

    class Stop(web.RequestHandler):
        def get(self):
            self.write("stopping")
            IOLoop.current().add_callback(IOLoop.current().stop)

    app = web.Application([("/", Hello), ("/stop", Stop)])
    server = app.listen(0, "127.0.0.1")
    (port,) = {sock.getsockname()[1] for sock in server._sockets.values()}
    installed = IOLoop.current()
    installed.add_callback(print, "ready", port, flush=True)
    IOLoop.current().start()

    # What install() set up is gone: its loop is closed, and no IOLoop is bound to it.
    loop = installed.asyncio_loop
    print("start() returned; loop closed:", loop.is_closed(),
          "bound:", loop in IOLoop._ioloop_for_asyncio, flush=True)
"""


@pytest.mark.parametrize("how", ["SIGTERM", "IOLoop.stop()"])
def test_tornado_install_then_an_unchanged_ioloop_start_serves_until_stopped(
    how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    service = start(request, [sys.executable, str(script(tmp_path, TORNADO_APP))], tmp_path)
    port = int(service.line(r"ready (\d+)").group(1))
    assert get(f"http://127.0.0.1:{port}/") == "hello from _StartableIOLoop"

    if how == "SIGTERM":
        code = service.stop(signal.SIGTERM)
    else:
        assert get(f"http://127.0.0.1:{port}/stop") == "stopping"
        code = service.wait()
    assert code == 0, service.output()
    assert "start() returned; loop closed: True bound: False" in service.output()


def test_tornado_start_after_the_installed_hub_stopped_says_to_install_again(
    tmp_path: Path,
) -> None:
    code = """
        import bridges.tornado
        bridges.tornado.install(frameworks=["tornado"])
        from tornado.ioloop import IOLoop
        io = IOLoop.current()
        io.add_callback(io.stop)
        io.start()
        try:
            io.start()
        except bridges.HubOwnsLoopError as exc:
            print(exc)
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert "Call bridges.tornado.install() again" in done.stdout


ASYNCORE_DAEMON = """
    import bridges.asyncore
    bridges.asyncore.install(frameworks=["asyncore"])

    import asyncore, asynchat, asyncio

    class Echo(asynchat.async_chat):
        def __init__(self, sock):
            super().__init__(sock)
            self.set_terminator(b"\\n")
            self.buffer = []

        def collect_incoming_data(self, data):
            self.buffer.append(data)

        def found_terminator(self):
            line, self.buffer = b"".join(self.buffer), []
            on_hub = asyncio.get_running_loop() is not None
            self.push(line + (b" on the hub\\n" if on_hub else b"\\n"))
            if line == b"quit":
                self.close_when_done()
                server.close()

    class Server(asyncore.dispatcher):
        def __init__(self):
            super().__init__()
            self.create_socket()
            self.bind(("127.0.0.1", 0))
            self.listen(5)

        def handle_accepted(self, sock, addr):
            Echo(sock)

    own_loop = asyncore.loop
    server = Server()
    print("ready", server.socket.getsockname()[1], flush=True)
    asyncore.loop()
    print("loop() returned; asyncore's own loop back:",
          asyncore.loop is own_loop.__wrapped__, "map:", dict(asyncore.socket_map), flush=True)
"""


def _chat(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(line + b"\n")
        return conn.makefile("rb").readline()


@pytest.mark.parametrize("how", ["SIGTERM", "the map empties"])
def test_asyncore_install_then_an_unchanged_top_level_loop_serves_until_it_ends(
    how: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    service = start(request, [sys.executable, str(script(tmp_path, ASYNCORE_DAEMON))], tmp_path)
    port = int(service.line(r"ready (\d+)").group(1))
    assert _chat(port, b"ping") == b"ping on the hub\n"

    if how == "SIGTERM":
        code = service.stop(signal.SIGTERM)
    else:
        assert _chat(port, b"quit") == b"quit on the hub\n"
        code = service.wait()
    assert code == 0, service.output()
    assert "loop() returned; asyncore's own loop back: True map: {}" in service.output()


def test_asyncore_loop_with_a_count_stays_asyncores_own_poll(tmp_path: Path) -> None:
    # A program that polls in its own main loop keeps doing so; the hub is not started.
    code = """
        import bridges.asyncore
        bridges.asyncore.install(frameworks=["asyncore"])
        import asyncore, asyncio
        asyncore.loop(timeout=0.01, count=1)
        print("polled; still installed:", hasattr(asyncore.loop, "__bridges_entry__"))
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "polled; still installed: True\n"


# -- gevent -------------------------------------------------------------------------


def test_a_gevent_main_cannot_block_the_greenlet_that_runs_the_hub() -> None:
    """Why a gevent main cannot run unchanged: on the hub asyncio is the master.

    The process's main greenlet runs the asyncio loop, and gevent's hub
    greenlet is entered from the loop's callbacks.  A gevent main blocks that
    very greenlet (``serve_forever()``, ``joinall``), which would block the
    loop and every framework on it, so gevent refuses the switch.  The main has
    to run in a greenlet of its own, spawned on the hub.
    """
    gevent = pytest.importorskip("gevent")
    from gevent.exceptions import BlockingSwitchOutError

    import bridges

    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException | None] = loop.create_future()

        def gevent_main() -> None:  # a gevent main, in the greenlet that runs the loop
            try:
                gevent.joinall([gevent.spawn(gevent.sleep, 0)])
            except BlockingSwitchOutError as exc:
                outcome.set_result(exc)
            else:
                outcome.set_result(None)

        loop.call_soon(gevent_main)
        return await outcome

    refused = bridges.run(main, frameworks=["gevent"])
    assert isinstance(refused, bridges.BridgeError), refused


GEVENT_MAIN = """
    import gevent
    from gevent.server import StreamServer
    import bridges

    def echo(sock, address):
        sock.sendall(sock.recv(64) + b" from a greenlet")
        sock.close()

    def main():
        server = StreamServer(("127.0.0.1", 0), echo)
        server.init_socket()
        print("ready", server.server_port, flush=True)
        server.serve_forever()

    bridges.run(gevent.spawn, main, frameworks=["gevent"])   # was: main()
    print("bridges.run returned", flush=True)
"""


def test_a_gevent_main_runs_on_the_hub_when_spawned_there_and_stops_on_sigterm(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("gevent")
    service = start(request, [sys.executable, str(script(tmp_path, GEVENT_MAIN))], tmp_path)
    port = int(service.line(r"ready (\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"ping")
        assert conn.recv(64) == b"ping from a greenlet"

    assert service.stop(signal.SIGTERM) == 0, service.output()
    assert "bridges.run returned" in service.output()
