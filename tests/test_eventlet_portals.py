"""Portals: eventlet-blocking calls inside asyncio tasks on the hub suspend only that task."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
from typing import Any

import pytest

pytest.importorskip("eventlet")

import eventlet
import eventlet.event
import eventlet.greenpool
import eventlet.queue
import eventlet.semaphore
import eventlet.wsgi
from eventlet.green import socket as green_socket
from eventlet.hubs import hub as eventlet_hub
from greenlet import GreenletExit

import bridges
from bridges import _portal
from bridges import eventlet as be

pytestmark = pytest.mark.timeout(30)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.fixture(params=[None, "uvloop"], ids=["stdlib", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Any:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


@pytest.fixture
def run(loop_factory: Any) -> Any:
    def run(main: Any, frameworks: Any = ("eventlet",), **kwargs: Any) -> Any:
        return bridges.run(main, frameworks=list(frameworks), loop_factory=loop_factory, **kwargs)

    return run


async def count_ticks(ticks: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.005)
        ticks[0] += 1


def test_a_blocking_call_in_a_task_keeps_the_task_and_its_context(run: Any) -> None:
    async def main() -> list[Any]:
        task = asyncio.current_task()
        var.set("main")
        eventlet.sleep(0.01)
        event = eventlet.event.Event()
        eventlet.spawn_after(0.01, event.send, "sent")
        waited = event.wait()
        return [asyncio.current_task() is task, var.get(), waited]

    assert run(main) == [True, "main", "sent"]


def test_a_task_blocked_in_eventlet_lets_other_tasks_run(run: Any) -> None:
    async def main() -> int:
        ticks = [0]
        stop = asyncio.Event()
        ticking = asyncio.create_task(count_ticks(ticks, stop))
        await asyncio.sleep(0)
        eventlet.sleep(0.2)
        stop.set()
        await ticking
        return ticks[0]

    # a stalled loop would not tick at all while the task sleeps
    assert run(main) >= 5


def test_blocking_calls_of_many_kinds_from_a_task(run: Any) -> None:
    async def main() -> list[Any]:
        queue: eventlet.queue.Queue[str] = eventlet.queue.Queue()
        eventlet.spawn_after(0.01, queue.put, "item")
        semaphore = eventlet.semaphore.Semaphore(0)
        eventlet.spawn_after(0.01, semaphore.release)
        thread = eventlet.spawn(lambda: eventlet.sleep(0.01) or "joined")
        pool = eventlet.greenpool.GreenPool()
        pooled = list(pool.imap(lambda n: eventlet.sleep(0.001) or n * 2, range(3)))
        left, right = green_socket.socketpair()
        with left, right:
            eventlet.spawn_after(0.01, left.sendall, b"ping")
            received = right.recv(4)
        return [queue.get(), semaphore.acquire(), thread.wait(), pooled, received.decode()]

    assert run(main) == ["item", True, "joined", [0, 2, 4], "ping"]


def test_green_socket_connect_and_recv_from_a_task(run: Any) -> None:
    async def main() -> bytes:
        listener = eventlet.listen(("127.0.0.1", 0))

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(16).upper())

        server = eventlet.spawn(serve)
        client = green_socket.create_connection(listener.getsockname())
        with client:
            client.sendall(b"echo")
            reply = client.recv(16)
        server.wait()
        listener.close()
        return reply

    assert run(main) == b"ECHO"


def test_a_task_started_by_a_task_blocks_on_its_own(run: Any) -> None:
    async def child(name: str) -> tuple[str, bool, str]:
        task = asyncio.current_task()
        var.set(name)
        eventlet.sleep(0.01)
        return name, asyncio.current_task() is task, var.get()

    async def main() -> list[Any]:
        var.set("main")
        results = await asyncio.gather(child("a"), child("b"))
        return [*results, var.get()]

    assert run(main) == [("a", True, "a"), ("b", True, "b"), "main"]


def test_an_exception_from_green_code_reaches_the_task_unchanged(run: Any) -> None:
    error = ValueError("from a greenthread")

    def fails() -> None:
        eventlet.sleep(0.01)
        raise error

    async def main() -> BaseException:
        with pytest.raises(ValueError) as info:
            eventlet.spawn(fails).wait()
        return info.value

    assert run(main) is error


def test_cancelling_a_task_blocked_in_eventlet_raises_at_the_blocking_call(run: Any) -> None:
    async def main() -> list[Any]:
        events: list[str] = []
        readers = be.get_hub().listeners[eventlet_hub.READ]
        left, right = green_socket.socketpair()

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
        waiting = right.fileno() in readers
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # eventlet's own cleanup (trampoline's finally) removed the listener
        listening_after = right.fileno() in readers
        left.close()
        right.close()
        return [events, waiting, listening_after]

    assert run(main) == [["cancelled at recv", "finally"], True, False]


def test_asyncio_wait_for_around_a_blocking_call(run: Any) -> None:
    async def blocks() -> None:
        eventlet.sleep(5)

    async def main() -> str:
        try:
            await asyncio.wait_for(blocks(), 0.02)
        except asyncio.TimeoutError:
            return "timed out"
        return "not timed out"

    assert run(main) == "timed out"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_asyncio_timeout_around_a_blocking_call_in_the_same_task(run: Any) -> None:
    async def main() -> str:
        try:
            async with asyncio.timeout(0.02):  # type: ignore[attr-defined]  # noqa: ASYNC100 - the blocking call is the checkpoint
                eventlet.event.Event().wait()
        except TimeoutError:
            return "timed out"
        return "not timed out"

    assert run(main) == "timed out"


def test_an_eventlet_timeout_around_a_blocking_call_in_a_task(run: Any) -> None:
    async def main() -> list[Any]:
        timeout = eventlet.Timeout(0.02)
        try:
            eventlet.queue.Queue().get()
        except eventlet.Timeout as exc:
            caught = exc is timeout
        finally:
            timeout.cancel()
        with eventlet.Timeout(0.02, False):  # the silent form: the block just ends
            eventlet.sleep(5)
        return [caught, "after"]

    assert run(main) == [True, "after"]


def test_an_eventlet_timeout_around_an_await_cancels_the_await_at_the_deadline(run: Any) -> None:
    async def main() -> list[Any]:
        started = time.monotonic()
        elapsed = None
        try:
            with eventlet.Timeout(0.05):
                await asyncio.sleep(5)
        except eventlet.Timeout:
            elapsed = time.monotonic() - started
        # eventlet is not wedged: timers and greenthreads still work afterwards
        eventlet.sleep(0.01)
        joined = await bridges.awaitable(eventlet.spawn(lambda: "after"))
        return [elapsed is not None and 0.04 < elapsed < 2, joined]

    assert run(main) == [True, "after"]


def test_an_eventlet_timeout_that_does_not_expire_leaves_the_task_alone(run: Any) -> None:
    async def main() -> str:
        with eventlet.Timeout(1):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        return "done"

    assert run(main) == "done"


def test_killing_a_greenthread_from_a_task_waits_for_its_finally(run: Any) -> None:
    async def main() -> list[Any]:
        events: list[str] = []
        task = asyncio.current_task()

        def victim() -> None:
            try:
                eventlet.sleep(10)
            finally:
                eventlet.sleep(0.01)  # blocks again while it dies
                events.append("victim finally")

        thread = eventlet.spawn(victim)
        eventlet.sleep(0)
        thread.kill()
        events.append("kill returned")
        with pytest.raises(GreenletExit):
            thread.wait()  # as in native eventlet: a killed greenthread's wait() raises
        unstarted = eventlet.spawn(events.append, "never")
        unstarted.kill()
        return [events, thread.dead, unstarted.dead, asyncio.current_task() is task]

    # as in native eventlet: kill() yields once, and the victim's finally
    # blocks, so kill returns first
    assert run(main) == [["kill returned", "victim finally"], True, True, True]


def test_be_wait_in_a_portal_task_awaits_inline(run: Any) -> None:
    async def inner(task: asyncio.Task[Any] | None) -> bool:
        await asyncio.sleep(0)
        var.set("set by the awaited coroutine")
        return asyncio.current_task() is task

    def legacy(task: asyncio.Task[Any] | None) -> bool:
        return be.wait(inner(task))

    async def main() -> list[Any]:
        before = len(asyncio.all_tasks())
        same_task = legacy(asyncio.current_task())
        return [same_task, len(asyncio.all_tasks()) == before, var.get()]

    # no new task, and no context copy: what the awaited coroutine set is seen after
    assert run(main) == [True, True, "set by the awaited coroutine"]


def test_be_wait_in_a_portal_task_raises_the_awaited_exception(run: Any) -> None:
    error = KeyError("inner")

    async def inner() -> None:
        await asyncio.sleep(0)
        raise error

    async def main() -> BaseException:
        with pytest.raises(KeyError) as info:
            be.wait(inner())
        return info.value

    assert run(main) is error


def test_be_wait_in_a_portal_task_waits_for_a_greenthread(run: Any) -> None:
    async def main() -> str:
        return be.wait(eventlet.spawn(lambda: eventlet.sleep(0.01) or "green"))  # type: ignore[no-any-return]

    assert run(main) == "green"


def test_cancelling_a_task_in_an_inline_be_wait_cancels_the_awaited_coroutine(run: Any) -> None:
    async def main() -> list[str]:
        events: list[str] = []

        async def inner() -> None:
            try:
                await asyncio.sleep(5)
            finally:
                events.append("inner finally")

        async def outer() -> None:
            try:
                be.wait(inner())
            finally:
                events.append("outer finally")

        task = asyncio.create_task(outer())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    assert run(main) == ["inner finally", "outer finally"]


def test_an_inline_be_wait_of_a_coroutine_that_never_suspends(run: Any) -> None:
    async def immediate() -> str:
        return "at once"

    async def main() -> str:
        return be.wait(immediate())  # type: ignore[no-any-return]

    assert run(main) == "at once"


def test_be_wait_from_a_greenthread_still_runs_a_task(run: Any) -> None:
    async def inner() -> bool:
        return isinstance(asyncio.current_task(), asyncio.Task)

    async def main() -> Any:
        return await bridges.awaitable(eventlet.spawn(be.wait, inner()))

    assert run(main) is True


def test_a_blocking_call_from_a_bare_loop_callback_still_raises_at_once(run: Any) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[BaseException | None] = loop.create_future()

        def callback() -> None:
            try:
                eventlet.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001 - the outcome is the test's
                outcome.set_result(exc)
            else:
                outcome.set_result(None)

        loop.call_soon(callback)
        exc = await outcome
        return [isinstance(exc, be.HubOwnsLoopError), "loop callback" in str(exc)]

    assert run(main) == [True, True]


def test_portals_false_makes_a_blocking_call_in_a_task_raise(run: Any) -> None:
    async def main() -> list[Any]:
        async def blocks() -> None:
            eventlet.sleep(0.01)

        with pytest.raises(be.HubOwnsLoopError, match="portals=False") as info:
            await asyncio.create_task(blocks())
        return [_portal.enabled(asyncio.get_running_loop()), type(info.value).__name__]

    assert run(main, portals=False) == [False, "HubOwnsLoopError"]


def test_a_task_blocked_in_eventlet_when_the_hub_stops_is_cancelled_cleanly(run: Any) -> None:
    events: list[str] = []

    async def blocked() -> None:
        try:
            eventlet.event.Event().wait()
        finally:
            eventlet.sleep(0)  # eventlet still works in the finally block
            events.append("finally")

    async def main() -> None:
        asyncio.get_running_loop().create_task(blocked())
        await asyncio.sleep(0.01)

    run(main)
    assert events == ["finally"]


def test_portals_end_with_the_hub(loop_factory: Any) -> None:
    loop = (
        asyncio.new_event_loop()
        if loop_factory is None
        else pytest.importorskip("uvloop").new_event_loop()
    )
    try:

        async def hub_then_after() -> list[bool]:
            async with bridges.Hub(frameworks=["eventlet"]):
                during = _portal.enabled(asyncio.get_running_loop())
            return [during, _portal.enabled(asyncio.get_running_loop())]

        assert loop.run_until_complete(hub_then_after()) == [True, False]
        assert loop.get_task_factory() is None
    finally:
        loop.close()


def test_a_task_looping_on_eventlet_sleep_zero_lets_other_tasks_run(run: Any) -> None:
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
            eventlet.sleep(0)
        advanced = counter - start
        stop = True
        await counting
        return advanced

    # sleep(0) answered inside the step at most a few dozen times in a row
    assert run(main) >= 10


def test_an_eventlet_wsgi_server_and_a_blocking_client_in_one_task(run: Any) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        eventlet.sleep(0.001)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    async def main() -> bytes:
        listener = eventlet.listen(("127.0.0.1", 0))
        server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
        client = green_socket.create_connection(listener.getsockname())
        with client:
            client.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            chunks = []
            while chunk := client.recv(4096):
                chunks.append(chunk)
        server.kill()
        listener.close()
        return b"".join(chunks).split(b"\r\n\r\n", 1)[1]

    assert run(main) == b"hello"


def test_with_gevent_attached_a_task_blocks_on_either_framework(run: Any) -> None:
    gevent = pytest.importorskip("gevent")
    event_module = pytest.importorskip("gevent.event")

    async def main() -> list[Any]:
        task = asyncio.current_task()
        var.set("both")
        gevent.sleep(0.01)
        eventlet.sleep(0.01)
        green_event = eventlet.event.Event()
        eventlet.spawn_after(0.01, green_event.send, "eventlet")
        gevent_event = event_module.AsyncResult()
        gevent.spawn_later(0.01, gevent_event.set, "gevent")
        victim = eventlet.spawn(eventlet.sleep, 10)
        eventlet.sleep(0)
        victim.kill()
        return [
            green_event.wait(),
            gevent_event.get(),
            victim.dead,
            asyncio.current_task() is task,
            var.get(),
        ]

    assert run(main, frameworks=("gevent", "eventlet")) == [
        "eventlet",
        "gevent",
        True,
        True,
        "both",
    ]


def test_greenletexit_raised_in_a_portal_task_ends_the_task_with_it(run: Any) -> None:
    async def raises() -> None:
        eventlet.sleep(0)
        raise GreenletExit("from the coroutine")

    async def main() -> str:
        with pytest.raises(GreenletExit) as info:
            await asyncio.create_task(raises())
        return str(info.value)

    # not swallowed as the portal greenlet's return value (a "bad yield")
    assert run(main) == "from the coroutine"


def test_a_greenthread_killing_a_task_greenlet_yields_and_is_not_woken_later(run: Any) -> None:
    async def main() -> list[Any]:
        events: list[Any] = []

        async def victim() -> None:
            try:
                eventlet.sleep(10)
            except GreenletExit:
                events.append("victim: GreenletExit at the blocking call")
                raise

        task = asyncio.create_task(victim())
        await asyncio.sleep(0.01)
        victim_greenlet = task.get_coro().glet
        later = eventlet.event.Event()

        def killer() -> None:
            eventlet.kill(victim_greenlet)
            eventlet.spawn_after(0.02, later.send, "sent later")
            # kill()'s own wake-up came while it yielded, not in this wait
            events.append(later.wait())

        await bridges.awaitable(eventlet.spawn(killer))
        with pytest.raises(GreenletExit):
            await task
        return events

    assert run(main) == ["victim: GreenletExit at the blocking call", "sent later"]
