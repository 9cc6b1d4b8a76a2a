"""The blocking detector: a dispatch holding the loop is named while it blocks, in each framework.

Each blocking handler below waits (up to 5 s) for the detector's report
before it returns: that the wait ends early proves the report was made while
the handler still held the loop, not after it returned.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

import pytest
from _asyncore_helpers import EchoServer, asyncore
from tornado import web
from twisted.internet import protocol

import bridges
from bridges import SlowCallbackError

THRESHOLD = 0.05
PATIENCE = 5.0


class Caught:
    """Collects the detector's reports, from its thread, as they are made."""

    def __init__(self) -> None:
        self.reported = threading.Event()
        self.errors: list[SlowCallbackError] = []
        self.while_blocking: list[bool] = []

    def listen(self, hub: bridges.Hub) -> Caught:
        assert hub.watchdog is not None
        hub.watchdog.listeners.append(self._on_report)
        return self

    def _on_report(self, error: SlowCallbackError) -> None:
        self.errors.append(error)
        self.reported.set()

    def hold_the_loop(self) -> None:
        """Block the loop's thread until the detector reports (or PATIENCE passes)."""
        self.while_blocking.append(self.reported.wait(PATIENCE))

    def only(self) -> SlowCallbackError:
        assert self.while_blocking == [True], "the report did not arrive while the call blocked"
        assert len(self.errors) == 1, [error.function for error in self.errors]
        return self.errors[0]


def _assert_names(error: SlowCallbackError, framework: str, function: str) -> None:
    assert error.framework == framework
    assert error.function == f"{__name__}.{function}"
    assert error.seconds >= THRESHOLD
    short = function.rsplit(".", 1)[-1]
    assert any(f"in {short}\n" in line for line in error.stack), error.stack
    assert function.rsplit(".", 1)[-1] in str(error)


async def _send(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(1024), PATIENCE)
    writer.close()
    await writer.wait_closed()
    return data


# -- Twisted ---------------------------------------------------------------


class BlockingEcho(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.factory.caught.hold_the_loop()
        self.transport.write(data)


def test_a_blocking_twisted_dataReceived_is_named_while_it_blocks() -> None:
    caught = Caught()

    async def main() -> bytes:
        from twisted.internet import reactor

        caught.listen(bridges.current_hub())
        factory = protocol.Factory.forProtocol(BlockingEcho)
        factory.caught = caught
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        try:
            return await _send(port.getHost().port, b"ping")
        finally:
            await bridges.awaitable(port.stopListening())

    assert bridges.run(main, frameworks=["twisted"], slow_callback=THRESHOLD) == b"ping"
    _assert_names(caught.only(), "twisted", "BlockingEcho.dataReceived")


class BlockOnStop(protocol.Protocol):
    """Echoes, and holds the loop when it receives ``stop``."""

    def dataReceived(self, data: bytes) -> None:
        if data.endswith(b"stop"):
            self.factory.caught.hold_the_loop()
        self.transport.write(data)


def test_a_blocking_dispatch_past_the_timed_ones_is_caught_all_the_same() -> None:
    from bridges._accounting import EVERY, EXACT

    caught = Caught()

    async def main() -> int:
        from twisted.internet import reactor

        hub = bridges.current_hub()
        caught.listen(hub)
        factory = protocol.Factory.forProtocol(BlockOnStop)
        factory.caught = caught
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
        try:
            meter = hub.accounting.meter_for("twisted")
            # Echo until the next dispatch is one the accounting does not time.
            while meter.count < EXACT or (meter.count + 1) % EVERY == 0:
                writer.write(b"x")
                assert await asyncio.wait_for(reader.readexactly(1), PATIENCE) == b"x"
            writer.write(b"stop")
            assert await asyncio.wait_for(reader.readexactly(4), PATIENCE) == b"stop"
            return meter.count
        finally:
            writer.close()
            await bridges.awaitable(port.stopListening())

    count = bridges.run(main, frameworks=["twisted"], slow_callback=THRESHOLD)
    assert count > EXACT
    _assert_names(caught.only(), "twisted", "BlockOnStop.dataReceived")


# -- gevent ----------------------------------------------------------------


def checkout(caught: Caught) -> str:
    """A legacy greenlet's view that blocks the whole thread (a synchronous DB call)."""
    caught.hold_the_loop()
    return "paid"


def test_a_blocking_greenlet_is_named_while_it_blocks() -> None:
    import gevent

    caught = Caught()

    async def main() -> str:
        caught.listen(bridges.current_hub())
        return await bridges.awaitable(gevent.spawn(checkout, caught))

    assert bridges.run(main, frameworks=["gevent"], slow_callback=THRESHOLD) == "paid"
    _assert_names(caught.only(), "gevent", "checkout")


# -- eventlet --------------------------------------------------------------


def test_a_blocking_greenthread_is_named_while_it_blocks() -> None:
    pytest.importorskip("eventlet")
    import eventlet

    caught = Caught()

    async def main() -> str:
        caught.listen(bridges.current_hub())
        return await bridges.awaitable(eventlet.spawn(checkout, caught))

    assert bridges.run(main, frameworks=["eventlet"], slow_callback=THRESHOLD) == "paid"
    _assert_names(caught.only(), "eventlet", "checkout")


# -- asyncore --------------------------------------------------------------


class BlockingHandler(asyncore.dispatcher_with_send):
    def __init__(self, sock: Any, caught: Caught) -> None:
        super().__init__(sock)
        self.caught = caught

    def handle_read(self) -> None:
        data = self.recv(1024)
        if data:
            self.caught.hold_the_loop()
            self.send(data)


def test_a_blocking_asyncore_handle_read_is_named_while_it_blocks() -> None:
    caught = Caught()

    async def main() -> bytes:
        caught.listen(bridges.current_hub())
        server = EchoServer(handler=lambda sock, map: BlockingHandler(sock, caught))
        try:
            return await _send(server.port, b"ping")
        finally:
            server.close()

    assert bridges.run(main, frameworks=["asyncore"], slow_callback=THRESHOLD) == b"ping"
    _assert_names(caught.only(), "asyncore", "BlockingHandler.handle_read")


# -- Tornado ---------------------------------------------------------------


class BlockingTornadoHandler(web.RequestHandler):
    def get(self) -> None:
        self.settings["caught"].hold_the_loop()
        self.write("done")


def test_a_blocking_tornado_handler_is_named_while_it_blocks() -> None:
    caught = Caught()

    async def main() -> bytes:
        caught.listen(bridges.current_hub())
        app = web.Application([("/", BlockingTornadoHandler)], caught=caught)
        server = app.listen(0, address="127.0.0.1")
        port = next(iter(server._sockets.values())).getsockname()[1]
        try:
            return await _send(port, b"GET / HTTP/1.0\r\n\r\n")
        finally:
            server.stop()

    response = bridges.run(main, frameworks=["tornado"], slow_callback=THRESHOLD)
    assert response.startswith(b"HTTP/1.1 200")
    _assert_names(caught.only(), "tornado", "BlockingTornadoHandler.get")


# -- asyncio ---------------------------------------------------------------


async def render_report(caught: Caught) -> str:
    """A coroutine that does CPU-bound or blocking work without awaiting."""
    caught.hold_the_loop()
    return "rendered"


@pytest.mark.parametrize("loop_factory", ["asyncio", "uvloop"])
def test_a_blocking_asyncio_task_is_named_while_it_blocks(loop_factory: str) -> None:
    caught = Caught()

    async def main() -> str:
        caught.listen(bridges.current_hub())
        await asyncio.sleep(THRESHOLD)  # the watchdog's first heartbeat has come back
        return await asyncio.ensure_future(render_report(caught))

    result = bridges.run(main, frameworks=None, slow_callback=THRESHOLD, loop_factory=loop_factory)
    assert result == "rendered"
    _assert_names(caught.only(), "asyncio", "render_report")


# -- what is not reported ----------------------------------------------------


def test_dispatches_under_the_threshold_are_never_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gevent
    from tornado.ioloop import IOLoop

    threshold = 0.25
    reported: list[SlowCallbackError] = []

    def short_greenlet() -> None:
        for _ in range(5):
            time.sleep(0.02)
            gevent.sleep(0.01)

    async def short_task() -> None:
        for _ in range(5):
            time.sleep(0.02)  # noqa: ASYNC251 - blocking under the threshold, on purpose
            await asyncio.sleep(0.01)

    async def main() -> dict[str, Any]:
        from twisted.internet import reactor, task

        hub = bridges.current_hub()
        assert hub.watchdog is not None
        hub.watchdog.listeners.append(reported.append)
        for _ in range(5):
            await bridges.awaitable(task.deferLater(reactor, 0.01, time.sleep, 0.02))
            fired = asyncio.get_running_loop().create_future()
            IOLoop.current().add_callback(lambda f=fired: (time.sleep(0.02), f.set_result(None)))
            await fired
        await asyncio.gather(short_task(), bridges.awaitable(gevent.spawn(short_greenlet)))
        return hub.stats()

    with caplog.at_level(logging.WARNING, logger="bridges"):
        stats = bridges.run(
            main, frameworks=["gevent", "tornado", "twisted"], slow_callback=threshold
        )
    assert reported == []
    assert stats["stalls"] == 0
    assert not [r for r in caplog.records if "held the event loop" in r.getMessage()]
    # The work did happen, and was seen: each framework's dispatches were timed.
    assert stats["frameworks"]["twisted"]["seconds"] >= 5 * 0.02
    assert stats["frameworks"]["tornado"]["seconds"] >= 5 * 0.02


def test_a_stall_is_reported_once_through_logging_and_the_error_sink(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: sink.append(ctx))
        await asyncio.sleep(THRESHOLD)
        time.sleep(THRESHOLD * 6)  # noqa: ASYNC251 - the stall under test
        await asyncio.sleep(0)  # the sink's report arrives once the loop runs again

    with caplog.at_level(logging.WARNING, logger="bridges"):
        bridges.run(main, frameworks=None, slow_callback=THRESHOLD)
    logged = [r for r in caplog.records if "held the event loop" in r.getMessage()]
    assert len(logged) == 1
    # Frames carry their qualified name from Python 3.11 on; before, module.function.
    named = "test_a_stall_is_reported_once" if sys.version_info >= (3, 11) else "main"
    assert f"{__name__}.{named}" in logged[0].getMessage()
    assert [type(ctx.get("exception")) for ctx in sink] == [SlowCallbackError]


def test_each_of_two_stalls_apart_is_reported_even_with_no_framework_dispatching() -> None:
    reported: list[SlowCallbackError] = []

    async def main() -> None:
        bridges.current_hub().watchdog.listeners.append(reported.append)
        for _ in range(2):
            time.sleep(THRESHOLD * 6)  # noqa: ASYNC251 - the stalls under test
            await asyncio.sleep(THRESHOLD * 4)  # the loop is free between them

    bridges.run(main, frameworks=None, slow_callback=THRESHOLD)
    assert [error.framework for error in reported] == ["asyncio", "asyncio"]


def test_the_environment_variable_sets_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGES_SLOW_CALLBACK", "0.2")
    assert bridges.Hub(frameworks=None).slow_callback == 0.2
    assert bridges.Hub(frameworks=None, slow_callback=0.5).slow_callback == 0.5
    monkeypatch.setenv("BRIDGES_SLOW_CALLBACK", "soon")
    with pytest.raises(bridges.UsageError, match="BRIDGES_SLOW_CALLBACK must be a positive"):
        bridges.Hub(frameworks=None)


def test_the_watchdog_thread_runs_only_with_a_threshold_and_only_while_the_hub_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import _thread

    monkeypatch.delenv("BRIDGES_SLOW_CALLBACK", raising=False)

    async def main() -> Any:
        watchdog = bridges.current_hub().watchdog
        # _thread counts a thread once it runs, which may be after start returned.
        for _ in range(500):
            if watchdog is None or _thread._count() > before:
                break
            await asyncio.sleep(0.01)
        return watchdog, _thread._count()

    before = _thread._count()
    assert bridges.run(main, frameworks=None) == (None, before)
    watchdog, during = bridges.run(main, frameworks=None, slow_callback=THRESHOLD)
    assert watchdog is not None
    assert during == before + 1
    assert _thread._count() == before  # stopped (and waited for) with the hub
