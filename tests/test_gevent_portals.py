"""Portals: gevent-blocking calls inside asyncio tasks on the hub suspend only that task."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from typing import Any

import gevent
import gevent.event
import gevent.queue
import gevent.socket
import pytest

import bridges
from bridges import gevent as bg

pytestmark = pytest.mark.timeout(30)

LOOPS = [
    None,
    pytest.param(
        "uvloop", marks=pytest.mark.skipif(sys.platform == "win32", reason="uvloop is POSIX only")
    ),
]

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.fixture(params=LOOPS, ids=["asyncio", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Any:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


@pytest.fixture
def run(loop_factory: Any) -> Any:
    def run(main: Any, **kwargs: Any) -> Any:
        return bridges.run(main, frameworks=["gevent"], loop_factory=loop_factory, **kwargs)

    return run


async def ticker(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


def test_a_blocking_call_in_a_task_keeps_the_task_and_its_context(run: Any) -> None:
    async def main() -> list[Any]:
        task = asyncio.current_task()
        var.set("main")
        gevent.sleep(0.01)
        event = gevent.event.Event()
        gevent.spawn_later(0.01, event.set)
        waited = event.wait()
        return [asyncio.current_task() is task, var.get(), waited]

    assert run(main) == [True, "main", True]


def test_a_task_blocked_in_gevent_lets_other_tasks_run(run: Any) -> None:
    async def main() -> float:
        gaps: list[float] = []
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(gaps, stop))
        await asyncio.sleep(0.02)
        gevent.sleep(0.3)
        stop.set()
        await ticking
        return max(gaps)

    # Stalled, the ticker would have one gap of 0.3 s.
    assert run(main) < 0.15


def test_blocking_calls_of_many_kinds_from_a_task(run: Any) -> None:
    async def main() -> list[Any]:
        queue: gevent.queue.Queue[str] = gevent.queue.Queue()
        gevent.spawn_later(0.01, queue.put, "item")
        result = gevent.event.AsyncResult()
        gevent.spawn_later(0.01, result.set, 42)
        glet = gevent.spawn(lambda: gevent.sleep(0.01) or "joined")
        left, right = gevent.socket.socketpair()
        with left, right:
            gevent.spawn_later(0.01, left.sendall, b"ping")
            received = right.recv(4)
        return [queue.get(), result.get(), glet.get(), received.decode()]

    assert run(main) == ["item", 42, "joined", "ping"]


def test_cancelling_a_task_blocked_in_gevent_raises_at_the_blocking_call(run: Any) -> None:
    async def main() -> list[Any]:
        events: list[str] = []
        before = bg.get_hub().loop.activecnt
        left, right = gevent.socket.socketpair()

        async def reads() -> None:
            try:
                right.recv(1)
            except asyncio.CancelledError:
                events.append("cancelled at recv")
                raise
            finally:
                events.append("finally")

        task = asyncio.create_task(reads())
        await asyncio.sleep(0.02)
        waiting = bg.get_hub().loop.activecnt
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        left.close()
        right.close()
        # the socket's io watcher was stopped by gevent's own cleanup
        return [events, waiting > before, bg.get_hub().loop.activecnt == before]

    assert run(main) == [["cancelled at recv", "finally"], True, True]


def test_a_gevent_timeout_without_a_portal_is_refused_at_entry(run: Any) -> None:
    async def main() -> list[Any]:
        with pytest.raises(bg.HubOwnsLoopError) as info, gevent.Timeout(0.01):
            await asyncio.sleep(1)
        gevent.spawn(gevent.sleep, 0.01)
        await asyncio.sleep(0.05)  # gevent keeps running
        return ["asyncio.timeout" in str(info.value), True]

    assert run(main, portals=False) == [True, True]


def test_a_gevent_server_starts_from_a_coroutine(run: Any) -> None:
    from gevent import pywsgi

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    async def main() -> bytes:
        server = pywsgi.WSGIServer(("localhost", 0), app, log=None)
        server.start()  # resolves the host name: a blocking call
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.server_port)
            writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return body.split(b"\r\n\r\n", 1)[1]
        finally:
            server.stop()

    assert run(main) == b"hello"


def test_operations_that_block_midway_complete_from_a_coroutine(run: Any) -> None:
    import gevent.subprocess

    async def main() -> list[Any]:
        events: list[str] = []

        def victim() -> None:
            try:
                gevent.sleep(10)
            finally:
                gevent.sleep(0.01)  # kill() waits for this
                events.append("victim finally")

        glet = gevent.spawn(victim)
        gevent.sleep(0)
        glet.kill()  # blocks until the greenlet has died
        completed = gevent.subprocess.run(
            [sys.executable, "-c", "print('child')"], stdout=gevent.subprocess.PIPE, check=True
        )
        pooled = bg.get_hub().threadpool.spawn(lambda: "pooled").get()
        return [events, glet.dead, completed.stdout.decode().strip(), pooled]

    assert run(main) == [["victim finally"], True, "child", "pooled"]


def test_an_exception_awaited_in_a_portal_task_keeps_its_traceback(run: Any) -> None:
    import traceback

    async def fail_in_a_task() -> None:
        await asyncio.sleep(0)
        raise ValueError("deep")

    async def main() -> list[str]:
        task = asyncio.create_task(fail_in_a_task())
        try:
            await task  # the task wakes up with the exception thrown in
        except ValueError as exc:
            return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        return []

    assert "fail_in_a_task" in run(main)
