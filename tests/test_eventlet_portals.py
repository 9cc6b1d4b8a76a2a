"""Portals: eventlet-blocking calls inside asyncio tasks on the hub suspend only that task."""

from __future__ import annotations

import asyncio
import contextvars
import sys
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


def test_be_wait_in_a_portal_task_waits_for_a_greenthread(run: Any) -> None:
    async def main() -> str:
        return be.wait(eventlet.spawn(lambda: eventlet.sleep(0.01) or "green"))  # type: ignore[no-any-return]

    assert run(main) == "green"


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
