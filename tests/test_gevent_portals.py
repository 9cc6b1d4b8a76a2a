"""Portals: gevent-blocking calls inside asyncio tasks on the hub suspend only that task."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import sys
import time
from typing import Any

import gevent
import gevent.event
import gevent.queue
import gevent.socket
import pytest

import bridges
from bridges import _portal
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


def test_a_task_started_by_a_task_blocks_on_its_own(run: Any) -> None:
    async def child(name: str) -> tuple[str, bool, str]:
        task = asyncio.current_task()
        var.set(name)
        gevent.sleep(0.01)
        return name, asyncio.current_task() is task, var.get()

    async def main() -> list[Any]:
        var.set("main")
        results = await asyncio.gather(child("a"), child("b"))
        return [*results, var.get()]

    assert run(main) == [("a", True, "a"), ("b", True, "b"), "main"]


def test_an_exception_from_green_code_reaches_the_task_unchanged(run: Any) -> None:
    error = ValueError("from a greenlet")

    def fails() -> None:
        gevent.sleep(0.01)
        raise error

    async def main() -> BaseException:
        with pytest.raises(ValueError) as info:
            gevent.spawn(fails).get()
        return info.value

    assert run(main) is error


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


def test_asyncio_timeout_around_a_blocking_call(run: Any) -> None:
    async def main() -> str:
        try:
            await asyncio.wait_for(blocks(), 0.02)
        except asyncio.TimeoutError:
            return "timed out"
        return "not timed out"

    async def blocks() -> None:
        gevent.sleep(5)

    assert run(main) == "timed out"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_asyncio_timeout_context_around_a_blocking_call_in_the_same_task(run: Any) -> None:
    async def main() -> str:
        try:
            async with asyncio.timeout(0.02):  # type: ignore[attr-defined]  # noqa: ASYNC100 - the blocking call is the checkpoint
                gevent.sleep(5)
        except TimeoutError:
            return "timed out"
        return "not timed out"

    assert run(main) == "timed out"


def test_an_anyio_cancel_scope_around_a_blocking_call(run: Any) -> None:
    anyio = pytest.importorskip("anyio")

    async def main() -> list[bool]:
        with anyio.move_on_after(0.02) as scope:
            gevent.sleep(5)
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep, 0)
            gevent.sleep(0.01)
        return [scope.cancelled_caught, True]

    assert run(main) == [True, True]


def test_bg_wait_in_a_portal_task_awaits_inline(run: Any) -> None:
    async def inner(task: asyncio.Task[Any] | None) -> bool:
        await asyncio.sleep(0)
        var.set("set by the awaited coroutine")
        return asyncio.current_task() is task

    def legacy(task: asyncio.Task[Any] | None) -> bool:
        return bg.wait(inner(task))

    async def main() -> list[Any]:
        before = len(asyncio.all_tasks())
        same_task = legacy(asyncio.current_task())
        return [same_task, len(asyncio.all_tasks()) == before, var.get()]

    # no new task, and no context copy: what the awaited coroutine set is seen after
    assert run(main) == [True, True, "set by the awaited coroutine"]


def test_bg_wait_in_a_portal_task_raises_the_awaited_exception(run: Any) -> None:
    error = KeyError("inner")

    async def inner() -> None:
        await asyncio.sleep(0)
        raise error

    async def main() -> BaseException:
        with pytest.raises(KeyError) as info:
            bg.wait(inner())
        return info.value

    assert run(main) is error


def test_cancelling_a_task_in_an_inline_bg_wait_cancels_the_awaited_coroutine(run: Any) -> None:
    async def main() -> list[str]:
        events: list[str] = []

        async def inner() -> None:
            try:
                await asyncio.sleep(5)
            finally:
                events.append("inner finally")

        async def outer() -> None:
            try:
                bg.wait(inner())
            finally:
                events.append("outer finally")

        task = asyncio.create_task(outer())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    assert run(main) == ["inner finally", "outer finally"]


def test_bg_wait_from_a_greenlet_still_runs_a_task(run: Any) -> None:
    async def inner() -> bool:
        return isinstance(asyncio.current_task(), asyncio.Task)

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(bg.wait, inner()))

    assert run(main) is True


def test_a_gevent_timeout_around_an_await_cancels_the_await_at_the_deadline(run: Any) -> None:
    async def main() -> list[Any]:
        started = time.monotonic()
        try:
            with gevent.Timeout(0.05):
                await asyncio.sleep(5)
        except gevent.Timeout:
            elapsed = time.monotonic() - started
        # gevent is not wedged: timers and greenlets still work afterwards
        gevent.sleep(0.01)
        joined = await bridges.awaitable(gevent.spawn(lambda: "after"))
        return [0.04 < elapsed < 2, joined]

    assert run(main) == [True, "after"]


def test_a_gevent_timeout_that_does_not_expire_leaves_the_task_alone(run: Any) -> None:
    async def main() -> str:
        with gevent.Timeout(1):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        return "done"

    assert run(main) == "done"


def test_a_gevent_timeout_without_a_portal_is_refused_at_entry(run: Any) -> None:
    async def main() -> list[Any]:
        with pytest.raises(bg.HubOwnsLoopError) as info, gevent.Timeout(0.01):
            await asyncio.sleep(1)
        gevent.spawn(gevent.sleep, 0.01)
        await asyncio.sleep(0.05)  # gevent keeps running
        return ["asyncio.timeout" in str(info.value), True]

    assert run(main, portals=False) == [True, True]


def test_a_task_blocked_in_gevent_when_the_hub_stops_is_cancelled_cleanly(run: Any) -> None:
    events: list[str] = []

    async def blocked() -> None:
        try:
            gevent.sleep(10)
        finally:
            gevent.sleep(0)  # gevent still works in the finally block
            events.append("finally")

    async def main() -> None:
        asyncio.get_running_loop().create_task(blocked())
        await asyncio.sleep(0.01)

    run(main)
    assert events == ["finally"]


def test_portals_end_with_the_hub(loop_factory: Any) -> None:
    async def main() -> bool:
        return _portal.enabled(asyncio.get_running_loop())

    loop = (
        asyncio.new_event_loop()
        if loop_factory is None
        else pytest.importorskip("uvloop").new_event_loop()
    )
    try:

        async def hub_then_after() -> list[bool]:
            async with bridges.Hub(frameworks=["gevent"]):
                during = _portal.enabled(asyncio.get_running_loop())
            return [during, _portal.enabled(asyncio.get_running_loop())]

        assert loop.run_until_complete(hub_then_after()) == [True, False]
        assert loop.get_task_factory() is None
    finally:
        loop.close()


def test_a_portal_task_looks_like_its_coroutine(run: Any) -> None:
    async def named_coroutine() -> None:
        gevent.sleep(0.01)

    async def main() -> list[Any]:
        task = asyncio.create_task(named_coroutine())
        await asyncio.sleep(0)
        stack = task.get_stack()
        described = repr(task)
        await task
        return ["named_coroutine" in described, [f.f_code.co_name for f in stack][-1]]

    assert run(main) == [True, "named_coroutine"]


def test_an_inline_await_of_a_coroutine_that_never_suspends(run: Any) -> None:
    async def immediate() -> str:
        return "at once"

    async def main() -> str:
        return bg.wait(immediate())

    assert run(main) == "at once"


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


def test_a_blocked_task_and_a_socket_server_in_greenlets_share_the_loop(run: Any) -> None:
    async def main() -> bytes:
        listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(16).upper())

        server = gevent.spawn(serve)
        client = gevent.socket.create_connection(listener.getsockname())
        with client:
            client.sendall(b"echo")
            reply = client.recv(16)
        server.join()
        listener.close()
        return reply

    assert run(main) == b"ECHO"


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


def test_a_task_looping_on_gevent_sleep_zero_lets_other_tasks_run(run: Any) -> None:
    async def main() -> int:
        counter = 0
        stop = False

        async def counts() -> None:
            nonlocal counter
            while not stop:
                counter += 1
                await asyncio.sleep(0)

        counting = asyncio.create_task(counts())
        await asyncio.sleep(0)
        start = counter
        for _ in range(1000):
            gevent.sleep(0)
        advanced = counter - start
        stop = True
        await counting
        return advanced

    # sleep(0) answered inside the step at most a few dozen times in a row
    assert run(main) >= 10


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
