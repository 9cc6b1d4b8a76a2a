"""Portals, the same for every green framework (gevent, eventlet): one mechanism, one set of rules.

What differs per framework (its primitives, sockets, kill and timeout
semantics) is in tests/test_gevent_portals.py and tests/test_eventlet_portals.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import sys
import time
from typing import Any, Callable, NamedTuple

import pytest

import bridges
from bridges import _portal

pytestmark = pytest.mark.timeout(30)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Green(NamedTuple):
    framework: str
    sleep: Callable[[float], Any]
    spawn: Callable[..., Any]
    wait: Callable[[Any], Any]
    timeout: Callable[[float], Any]
    join: Callable[[Any], Any]
    """Wait for a green thread's outcome, natively (blocking)."""
    socket: Any
    """The framework's green ``socket`` module."""


def _gevent() -> Green:
    gevent = pytest.importorskip("gevent")
    gevent_socket = pytest.importorskip("gevent.socket")
    from bridges import gevent as bg

    return Green(
        "gevent",
        gevent.sleep,
        gevent.spawn,
        bg.wait,
        gevent.Timeout,
        lambda g: g.get(),
        gevent_socket,
    )


def _eventlet() -> Green:
    eventlet = pytest.importorskip("eventlet")
    from eventlet.green import socket

    from bridges import eventlet as be

    return Green(
        "eventlet",
        eventlet.sleep,
        eventlet.spawn,
        be.wait,
        eventlet.Timeout,
        lambda gt: gt.wait(),
        socket,
    )


@pytest.fixture(params=[_gevent, _eventlet], ids=["gevent", "eventlet"])
def green(request: pytest.FixtureRequest) -> Green:
    return request.param()  # type: ignore[no-any-return]


@pytest.fixture(params=[None, "uvloop"], ids=["stdlib", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Any:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


@pytest.fixture
def run(green: Green, loop_factory: Any) -> Any:
    def run(main: Any, **kwargs: Any) -> Any:
        return bridges.run(main, frameworks=[green.framework], loop_factory=loop_factory, **kwargs)

    return run


def test_a_task_started_by_a_task_blocks_on_its_own(run: Any, green: Green) -> None:
    async def child(name: str) -> tuple[str, bool, str]:
        task = asyncio.current_task()
        var.set(name)
        green.sleep(0.01)
        return name, asyncio.current_task() is task, var.get()

    async def main() -> list[Any]:
        var.set("main")
        results = await asyncio.gather(child("a"), child("b"))
        return [*results, var.get()]

    assert run(main) == [("a", True, "a"), ("b", True, "b"), "main"]


def test_an_exception_from_green_code_reaches_the_task_unchanged(run: Any, green: Green) -> None:
    error = ValueError("from a green thread")

    def fails() -> None:
        green.sleep(0.01)
        raise error

    async def main() -> BaseException:
        with pytest.raises(ValueError) as info:
            green.join(green.spawn(fails))
        return info.value

    assert run(main) is error


def test_a_blocked_task_and_a_socket_server_in_green_threads_share_the_loop(
    run: Any, green: Green
) -> None:
    async def main() -> bytes:
        listener = green.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(16).upper())

        server = green.spawn(serve)
        client = green.socket.create_connection(listener.getsockname())  # connect, in the task
        with client:
            client.sendall(b"echo")
            reply = client.recv(16)
        green.join(server)
        listener.close()
        return reply  # type: ignore[no-any-return]

    assert run(main) == b"ECHO"


def test_a_green_timeout_around_an_await_cancels_the_await_at_the_deadline(
    run: Any, green: Green
) -> None:
    async def main() -> list[Any]:
        started = time.monotonic()
        elapsed = None
        try:
            with green.timeout(0.05):
                await asyncio.sleep(5)
        except green.timeout:  # type: ignore[misc]  # gevent.Timeout / eventlet.Timeout
            elapsed = time.monotonic() - started
        # the framework is not wedged: timers and green threads still work afterwards
        green.sleep(0.01)
        joined = await bridges.awaitable(green.spawn(lambda: "after"))
        return [elapsed is not None and 0.04 < elapsed < 2, joined]

    assert run(main) == [True, "after"]


def test_asyncio_wait_for_around_a_blocking_call(run: Any, green: Green) -> None:
    async def blocks() -> None:
        green.sleep(5)

    async def main() -> str:
        try:
            await asyncio.wait_for(blocks(), 0.02)
        except asyncio.TimeoutError:
            return "timed out"
        return "not timed out"

    assert run(main) == "timed out"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_asyncio_timeout_around_a_blocking_call_in_the_same_task(run: Any, green: Green) -> None:
    async def main() -> str:
        try:
            async with asyncio.timeout(0.02):  # type: ignore[attr-defined]  # noqa: ASYNC100 - the blocking call is the checkpoint
                green.sleep(5)
        except TimeoutError:
            return "timed out"
        return "not timed out"

    assert run(main) == "timed out"


def test_an_anyio_cancel_scope_around_a_blocking_call(run: Any, green: Green) -> None:
    anyio = pytest.importorskip("anyio")

    async def main() -> list[bool]:
        with anyio.move_on_after(0.02) as scope:
            green.sleep(5)
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep, 0)
            green.sleep(0.01)
        return [scope.cancelled_caught, True]

    assert run(main) == [True, True]


def test_wait_in_a_portal_task_awaits_inline(run: Any, green: Green) -> None:
    async def inner(task: asyncio.Task[Any] | None) -> bool:
        await asyncio.sleep(0)
        var.set("set by the awaited coroutine")
        return asyncio.current_task() is task

    def legacy(task: asyncio.Task[Any] | None) -> bool:
        return green.wait(inner(task))  # type: ignore[no-any-return]

    async def main() -> list[Any]:
        before = len(asyncio.all_tasks())
        same_task = legacy(asyncio.current_task())
        return [same_task, len(asyncio.all_tasks()) == before, var.get()]

    # no new task, and no context copy: what the awaited coroutine set is seen after
    assert run(main) == [True, True, "set by the awaited coroutine"]


def test_wait_in_a_portal_task_raises_the_awaited_exception(run: Any, green: Green) -> None:
    error = KeyError("inner")

    async def inner() -> None:
        await asyncio.sleep(0)
        raise error

    async def main() -> BaseException:
        with pytest.raises(KeyError) as info:
            green.wait(inner())
        return info.value

    assert run(main) is error


def test_cancelling_a_task_in_an_inline_wait_cancels_the_awaited_coroutine(
    run: Any, green: Green
) -> None:
    async def main() -> list[str]:
        events: list[str] = []

        async def inner() -> None:
            try:
                await asyncio.sleep(5)
            finally:
                events.append("inner finally")

        async def outer() -> None:
            try:
                green.wait(inner())
            finally:
                events.append("outer finally")

        task = asyncio.create_task(outer())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    assert run(main) == ["inner finally", "outer finally"]


def test_an_inline_wait_of_a_coroutine_that_never_suspends(run: Any, green: Green) -> None:
    async def immediate() -> str:
        return "at once"

    async def main() -> str:
        return green.wait(immediate())  # type: ignore[no-any-return]

    assert run(main) == "at once"


def test_wait_from_a_green_thread_still_runs_a_task(run: Any, green: Green) -> None:
    async def inner() -> bool:
        return isinstance(asyncio.current_task(), asyncio.Task)

    async def main() -> Any:
        return await bridges.awaitable(green.spawn(green.wait, inner()))

    assert run(main) is True


def test_a_green_timeout_that_does_not_expire_leaves_the_task_alone(run: Any, green: Green) -> None:
    async def main() -> str:
        with green.timeout(1):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        return "done"

    assert run(main) == "done"


def test_a_task_blocked_in_green_code_when_the_hub_stops_is_cancelled_cleanly(
    run: Any, green: Green
) -> None:
    events: list[str] = []

    async def blocked() -> None:
        try:
            green.sleep(10)
        finally:
            green.sleep(0)  # the framework still works in the finally block
            events.append("finally")

    async def main() -> None:
        asyncio.get_running_loop().create_task(blocked())
        await asyncio.sleep(0.01)

    run(main)
    assert events == ["finally"]


def test_portals_end_with_the_hub(green: Green, loop_factory: Any) -> None:
    loop = (
        asyncio.new_event_loop()
        if loop_factory is None
        else pytest.importorskip("uvloop").new_event_loop()
    )
    try:

        async def hub_then_after() -> list[bool]:
            async with bridges.Hub(frameworks=[green.framework]):
                during = _portal.enabled(asyncio.get_running_loop())
            return [during, _portal.enabled(asyncio.get_running_loop())]

        assert loop.run_until_complete(hub_then_after()) == [True, False]
        assert loop.get_task_factory() is None
    finally:
        loop.close()


def test_a_task_looping_on_sleep_zero_lets_other_tasks_run(run: Any, green: Green) -> None:
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
            green.sleep(0)
        advanced = counter - start
        stop = True
        await counting
        return advanced

    # sleep(0) answered inside the step at most a few dozen times in a row
    assert run(main) >= 10


def test_a_portal_task_looks_like_its_coroutine(run: Any, green: Green) -> None:
    async def named_coroutine() -> None:
        green.sleep(0.01)

    async def main() -> list[Any]:
        task = asyncio.create_task(named_coroutine())
        await asyncio.sleep(0)
        stack = task.get_stack()
        described = repr(task)
        await task
        return ["named_coroutine" in described, [f.f_code.co_name for f in stack][-1]]

    assert run(main) == [True, "named_coroutine"]
