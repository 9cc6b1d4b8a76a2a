"""gevent on the hub: the gevent <-> asyncio contract, servers, lifecycle."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import socket
import traceback
from typing import Any

import gevent
import gevent.event
import gevent.pywsgi
import gevent.server
import greenlet
import pytest
from gevent._hub_local import get_hub_if_exists
from greenlet import GreenletExit

import bridges
from bridges import gevent as bg

pytestmark = pytest.mark.timeout(30)

GEVENT = ["gevent"]
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def run(main: Any, *args: Any, **kwargs: Any) -> Any:
    return bridges.run(main, *args, frameworks=GEVENT, **kwargs)


def run_in_greenlet(scenario: Any) -> Any:
    """``scenario()`` in a greenlet on a fresh hub; its result."""

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(scenario))

    return run(main)


class Boom(Exception):
    pass


def collect_reports(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    return reports


# -- asyncio awaits gevent ---------------------------------------------------


def test_awaiting_a_greenlet_returns_the_same_result_object() -> None:
    payload = object()

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(lambda: payload))

    assert run(main) is payload


def test_awaiting_an_unstarted_greenlet_runs_it_at_once_as_gevent_join_does() -> None:
    async def main() -> list[str]:
        order: list[str] = []
        asyncio.get_running_loop().call_soon(order.append, "loop callback")
        await bridges.awaitable(gevent.spawn(order.append, "greenlet"))
        order.append("awaited")
        await asyncio.sleep(0)
        return order

    assert run(main) == ["greenlet", "awaited", "loop callback"]


def test_awaiting_an_unstarted_greenlet_that_blocks_waits_for_it() -> None:
    async def main() -> str:
        event = gevent.event.Event()

        def blocked() -> str:
            event.wait()
            return "woken"

        glet = gevent.spawn(blocked)
        asyncio.get_running_loop().call_later(0.01, event.set)
        return await bridges.awaitable(glet)  # type: ignore[no-any-return]

    assert run(main) == "woken"


def test_awaiting_a_failed_greenlet_raises_the_same_exception_with_its_frames() -> None:
    error = Boom("from the greenlet")

    def fails() -> None:
        raise error

    async def main() -> tuple[BaseException, list[dict[str, Any]]]:
        reports = collect_reports(asyncio.get_running_loop())
        glet = gevent.spawn(fails)
        with pytest.raises(Boom) as info:
            await bridges.awaitable(glet)
        return info.value, reports

    raised, reports = run(main)
    assert reports == [], "an exception that was awaited is not an unhandled error"
    assert raised is error
    frames = [frame.name for frame in traceback.extract_tb(raised.__traceback__)]
    assert "fails" in frames


def test_killing_a_greenlet_cancels_the_task_awaiting_it() -> None:
    async def main() -> str:
        glet = gevent.spawn(gevent.sleep, 10)
        waiting = asyncio.ensure_future(bridges.awaitable(glet))
        await asyncio.sleep(0.01)
        glet.kill(block=False)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return "cancelled"

    assert run(main) == "cancelled"


def test_cancelling_the_awaiting_task_kills_the_greenlet_and_runs_its_finally() -> None:
    cleaned: list[str] = []

    def sleeper() -> None:
        try:
            gevent.sleep(10)
        finally:
            cleaned.append("finally")

    async def main() -> bool:
        glet = gevent.spawn(sleeper)
        task = asyncio.ensure_future(bridges.awaitable(glet))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await bridges.awaitable(glet)  # killed greenlets end with GreenletExit -> cancelled
        return glet.dead

    with pytest.raises(asyncio.CancelledError):
        run(main)
    assert cleaned == ["finally"]


def test_awaiting_an_async_result_set_by_a_greenlet_returns_its_value() -> None:
    async def main() -> Any:
        result = gevent.event.AsyncResult()
        gevent.spawn_later(0.01, result.set, "value")
        return await bridges.awaitable(result)

    assert run(main) == "value"


def test_awaiting_an_async_result_given_an_exception_raises_that_exception() -> None:
    error = Boom("async result")

    async def main() -> BaseException:
        result = gevent.event.AsyncResult()
        gevent.spawn(result.set_exception, error)
        with pytest.raises(Boom) as info:
            await bridges.awaitable(result)
        return info.value

    assert run(main) is error


def _serve_requests(requests: Any) -> None:
    """A greenlet that answers each AsyncResult put on ``requests`` at once."""
    i = 0
    while True:
        requests.get().set(i)
        i += 1


def test_awaiting_an_async_result_runs_the_greenlet_it_woke_before_suspending() -> None:
    # Native gevent's get() switches to the hub, which runs the pending
    # callbacks first: the reply is there before anything polls.
    import gevent.queue

    async def main() -> list[Any]:
        requests: Any = gevent.queue.Queue()
        server = gevent.spawn(_serve_requests, requests)
        got = []
        for _ in range(3):
            result = gevent.event.AsyncResult()
            requests.put(result)
            ticks: list[int] = []
            asyncio.get_running_loop().call_soon(ticks.append, 1)
            got.append(await bridges.awaitable(result))
            got.append(list(ticks))
        server.kill()
        return got

    assert run(main) == [0, [], 1, [], 2, []]


def test_awaiting_an_event_runs_the_greenlet_that_sets_it_before_suspending() -> None:
    async def main() -> list[int]:
        event = gevent.event.Event()
        gevent.spawn(event.set)
        ticks: list[int] = []
        asyncio.get_running_loop().call_soon(ticks.append, 1)
        await bridges.awaitable(event)
        return list(ticks)

    assert run(main) == []


def test_a_coroutine_awaiting_green_replies_in_a_loop_still_lets_other_tasks_run() -> None:
    # The pending green work runs inline only so many times in a row; then
    # the loop gets its turn, as it does between gevent's callback batches.
    import gevent.queue

    async def ticker(ticks: list[int]) -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0)

    async def main() -> int:
        requests: Any = gevent.queue.Queue()
        server = gevent.spawn(_serve_requests, requests)
        ticks: list[int] = []
        task = asyncio.ensure_future(ticker(ticks))
        await asyncio.sleep(0)
        ticks.clear()
        for _ in range(1000):
            result = gevent.event.AsyncResult()
            requests.put(result)
            await bridges.awaitable(result)
        task.cancel()
        server.kill()
        return len(ticks)

    assert run(main) >= 10


def test_awaiting_an_event_returns_when_a_greenlet_sets_it() -> None:
    async def main() -> Any:
        event = gevent.event.Event()
        gevent.spawn(event.set)
        return await bridges.awaitable(event)

    assert run(main) is True


# -- gevent waits on asyncio -------------------------------------------------


def test_bg_wait_in_a_greenlet_returns_the_coroutines_result_object() -> None:
    payload = object()

    async def produce() -> object:
        await asyncio.sleep(0.01)
        return payload

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(bg.wait, produce()))

    assert run(main) is payload


def test_bg_wait_raises_the_same_exception_the_coroutine_raised() -> None:
    error = Boom("from asyncio")

    async def fails() -> None:
        await asyncio.sleep(0)
        raise error

    def in_greenlet() -> BaseException:
        with pytest.raises(Boom) as info:
            bg.wait(fails())
        return info.value

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(in_greenlet))

    assert run(main) is error


def test_bg_wait_from_a_coroutine_without_a_portal_raises_a_bridge_error_at_once() -> None:
    async def main() -> BaseException:
        future = asyncio.get_running_loop().create_future()
        with pytest.raises(bg.HubOwnsLoopError) as info:
            bg.wait(future)
        return info.value

    error = run(main, portals=False)
    assert isinstance(error, bridges.BridgeError)
    assert "portals=False" in str(error)


def test_a_gevent_blocking_call_in_a_coroutine_without_portals_raises() -> None:
    async def main() -> str:
        with pytest.raises(bg.HubOwnsLoopError):
            gevent.sleep(0.01)
        with pytest.raises(bg.HubOwnsLoopError):
            gevent.spawn(gevent.sleep, 1).join()
        with pytest.raises(bg.HubOwnsLoopError):
            gevent.event.Event().wait(0.01)
        with pytest.raises(bg.HubOwnsLoopError):
            gevent.event.AsyncResult().get(timeout=0.01)
        return "loop still runs"

    assert run(main, portals=False) == "loop still runs"


def test_a_gevent_blocking_call_in_a_loop_callback_raises_at_once() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[list[str]] = loop.create_future()

        def callback() -> None:
            raised = []
            for block in (lambda: gevent.sleep(0.01), lambda: bg.wait(loop.create_future())):
                try:
                    block()
                except bg.HubOwnsLoopError as exc:
                    raised.append(str(exc))
            outcome.set_result(raised)

        loop.call_soon(callback)
        return await outcome

    raised = run(main)
    assert len(raised) == 2
    assert all("loop callback" in message for message in raised)


def test_bg_wait_inside_a_gevent_callback_raises_a_bridge_error() -> None:
    async def main() -> BaseException:
        outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

        def callback() -> None:
            try:
                bg.wait(asyncio.sleep(0))
            except bg.HubOwnsLoopError as exc:
                outcome.set_result(exc)

        bg.get_hub().loop.run_callback(callback)
        return await outcome

    assert "gevent's hub" in str(run(main))


def test_killing_a_greenlet_blocked_in_bg_wait_cancels_the_awaited_task() -> None:
    async def main() -> bool:
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await asyncio.sleep(10)

        task = asyncio.ensure_future(slow())
        glet = gevent.spawn(bg.wait, task)
        await started.wait()
        await asyncio.sleep(0.01)
        glet.kill(block=False)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main) is True


def test_gevent_timeout_around_bg_wait_cancels_the_task() -> None:
    async def main() -> tuple[bool, bool]:
        task = asyncio.ensure_future(asyncio.sleep(10))

        def waits() -> bool:
            with gevent.Timeout(0.02, False):
                bg.wait(task)
            return True

        finished = await bridges.awaitable(gevent.spawn(waits))
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished, task.cancelled()

    assert run(main) == (True, True)


def test_a_wake_up_scheduled_before_a_kill_does_not_resume_the_greenlet_later() -> None:
    async def main() -> list[Any]:
        future = asyncio.get_running_loop().create_future()
        seen: list[Any] = []

        def waits() -> None:
            try:
                bg.wait(future)
            except Boom:
                seen.append("killed")
            started = asyncio.get_running_loop().time()
            gevent.sleep(0.2)
            seen.append(asyncio.get_running_loop().time() - started >= 0.15)  # not at once

        glet = gevent.spawn(waits)
        await asyncio.sleep(0.01)
        future.set_result("done")  # bg.wait's wake-up is now scheduled on the loop
        glet.kill(Boom(), block=False)
        bridges.awaitable(gevent.event.Event())  # runs the hub's queue, the kill, at once
        await bridges.awaitable(glet)
        return seen

    assert run(main) == ["killed", True]


def test_a_greenlet_woken_by_bg_wait_has_what_it_queued_run_when_it_blocks_again() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        first, second, third = (loop.create_future() for _ in range(3))
        order: list[str] = []
        ready = gevent.event.Event()

        def woken() -> None:
            bg.wait(first)
            order.append("woken")
            ready.set()  # wakes the two below: gevent work for the hub's next pass
            bg.wait(second)

        def follows(name: str) -> None:
            ready.wait()
            order.append(name)
            bg.wait(third)  # blocks inside the hub's pass, not straight to asyncio

        glets = [gevent.spawn(woken), gevent.spawn(follows, "a"), gevent.spawn(follows, "b")]
        await asyncio.sleep(0.01)
        first.set_result(None)
        await asyncio.sleep(0)  # runs after bg.wait's wake-up, queued behind it
        seen = list(order)
        second.set_result(None)
        third.set_result(None)
        await bridges.awaitable(gevent.spawn(gevent.joinall, glets, raise_error=True))
        return seen

    assert run(main) == ["woken", "a", "b"]


def test_bg_wait_calls_the_greenlets_switch_out_each_time_it_blocks() -> None:
    class Tracked(gevent.Greenlet):
        blocks = 0

        def switch_out(self) -> None:
            self.blocks += 1

    async def main() -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        glet = Tracked(lambda: bg.wait(first) + bg.wait(second))
        glet.start()
        await asyncio.sleep(0.01)
        first.set_result("a")
        await asyncio.sleep(0.01)
        second.set_result("b")
        return await bridges.awaitable(glet), glet.blocks

    assert run(main) == ("ab", 2)


def test_bg_wait_in_a_raw_greenlet_of_the_hub_returns_the_result() -> None:
    async def main() -> Any:
        future = asyncio.get_running_loop().create_future()
        outcome = gevent.event.AsyncResult()
        ghub = bg.get_hub()
        raw = greenlet.greenlet(lambda: outcome.set(bg.wait(future)), parent=ghub)
        ghub.loop.run_callback(raw.switch)
        await asyncio.sleep(0.01)
        future.set_result("from-asyncio")
        return await bridges.awaitable(outcome), raw.dead

    assert run(main) == ("from-asyncio", True)


def test_call_soon_from_a_greenlet_wakes_the_loop() -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        gevent.spawn(lambda: loop.call_soon(future.set_result, "woken"))
        return await asyncio.wait_for(future, 5)

    assert run(main) == "woken"


# -- bg.spawn -----------------------------------------------------------------


def test_bg_spawn_greenlet_ends_with_the_awaitables_result() -> None:
    async def main() -> Any:
        glet = bg.spawn(asyncio.sleep(0.01, result="done"))
        return await bridges.awaitable(glet), glet.value

    assert run(main) == ("done", "done")


def test_killing_a_bg_spawn_greenlet_cancels_its_task() -> None:
    async def main() -> bool:
        task = asyncio.ensure_future(asyncio.sleep(10))
        glet = bg.spawn(task)
        await asyncio.sleep(0.01)
        glet.kill(block=False)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main) is True


def test_killing_a_bg_spawn_greenlet_before_it_starts_still_cancels_its_task() -> None:
    async def main() -> bool:
        task = asyncio.ensure_future(asyncio.sleep(10))
        glet = bg.spawn(task)
        glet.kill(block=False)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main) is True


def test_cancelling_a_bg_spawn_task_ends_the_greenlet_with_greenlet_exit() -> None:
    async def main() -> Any:
        task = asyncio.ensure_future(asyncio.sleep(10))
        glet = bg.spawn(task)
        await asyncio.sleep(0.01)
        task.cancel()
        await bridges.awaitable(gevent.spawn(glet.join))
        return glet.value, glet.successful()

    value, successful = run(main)
    assert isinstance(value, GreenletExit)
    assert successful


# -- context -------------------------------------------------------------------


def test_bg_spawn_runs_the_coroutine_in_a_copy_of_the_callers_context() -> None:
    async def read() -> str:
        return request_id.get()

    async def main() -> Any:
        request_id.set("from-task")
        return await bridges.awaitable(bg.spawn(read()))

    assert run(main) == "from-task"


def test_bg_wait_runs_the_coroutine_in_a_copy_of_the_greenlets_context() -> None:
    async def read() -> str:
        return request_id.get()

    def in_greenlet() -> str:
        request_id.set("from-greenlet")
        return bg.wait(read())

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(in_greenlet))

    assert run(main) == "from-greenlet"


# -- concurrency, errors -------------------------------------------------------


def test_fifty_sleeping_greenlets_and_fifty_sleeping_tasks_finish_together() -> None:
    async def main() -> tuple[int, int]:
        glets = [gevent.spawn(lambda i=i: (gevent.sleep(0.2), i)[1]) for i in range(50)]
        tasks = [asyncio.ensure_future(asyncio.sleep(0.2, result=i)) for i in range(50)]
        # Run one after another, 100 sleeps of 0.2 s would need 20 s: the bound
        # fails that, while running together they need about 0.2 s.
        results = await asyncio.wait_for(
            asyncio.gather(*(bridges.awaitable(g) for g in glets), *tasks), 5
        )
        return sum(results[:50]), sum(results[50:])

    assert run(main) == (sum(range(50)), sum(range(50)))


def test_an_unhandled_greenlet_error_is_reported_once_and_gevent_keeps_running() -> None:
    error = Boom("nobody handles me")

    def fails() -> None:
        raise error

    async def main() -> tuple[list[dict[str, Any]], Any]:
        reports = collect_reports(asyncio.get_running_loop())
        gevent.spawn(fails)
        await asyncio.sleep(0.02)
        after = await bridges.awaitable(gevent.spawn(lambda: "still running"))
        return reports, after

    reports, after = run(main)
    assert [r.get("exception") for r in reports] == [error]
    assert after == "still running"


def test_an_exception_escaping_a_gevent_callback_is_reported_and_the_hub_survives() -> None:
    error = Boom("raw callback")

    def raw() -> None:
        raise error

    async def main() -> tuple[list[dict[str, Any]], Any]:
        reports = collect_reports(asyncio.get_running_loop())
        bg.get_hub().loop.run_callback(raw)
        await asyncio.sleep(0.02)
        after = await bridges.awaitable(gevent.spawn(lambda: gevent.sleep(0.01) or "alive"))
        return reports, after

    reports, after = run(main)
    assert [r.get("exception") for r in reports] == [error]
    assert after == "alive"


# -- servers on real sockets ---------------------------------------------------


def test_stream_server_echoes_to_asyncio_clients() -> None:
    def echo(sock: Any, _address: Any) -> None:
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                sock.sendall(data)

    async def client(port: int, index: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        received = b""
        for round_ in range(20):
            message = f"client {index} round {round_}\n".encode()
            writer.write(message)
            received += await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return received

    async def main() -> list[bool]:
        server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
        server.start()
        try:
            port = server.server_port
            results = await asyncio.gather(*(client(port, i) for i in range(10)))
        finally:
            server.stop()
        return [
            r == b"".join(f"client {i} round {n}\n".encode() for n in range(20))
            for i, r in enumerate(results)
        ]

    assert run(main) == [True] * 10


def test_pywsgi_app_calls_asyncio_code_through_bg_wait_for_real_http_clients() -> None:
    async def lookup(name: str) -> str:
        await asyncio.sleep(0.001)
        return f"hello {name} from asyncio"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        name = environ["PATH_INFO"].strip("/")
        body = bg.wait(lookup(name)).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    def http_get(port: int, name: str) -> bytes:
        # A real client on a real OS thread (asyncio's executor), blocking I/O.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /{name} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    async def main() -> list[bytes]:
        server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), app, log=None)
        # start() resolves the host name (a blocking gevent call): start it in a greenlet.
        await bridges.awaitable(gevent.spawn(server.start))
        try:
            port = server.server_port
            loop = asyncio.get_running_loop()
            responses = await asyncio.gather(
                *(loop.run_in_executor(None, http_get, port, f"n{i}") for i in range(8))
            )
        finally:
            server.stop()
        return responses

    responses = run(main)
    for i, response in enumerate(responses):
        assert response.startswith(b"HTTP/1.1 200")
        assert response.endswith(f"hello n{i} from asyncio".encode())


# -- lifecycle -----------------------------------------------------------------


def test_stopping_the_hub_kills_leftover_greenlets_and_runs_their_finally() -> None:
    cleaned: list[str] = []

    def forever() -> None:
        try:
            gevent.sleep(100)
        finally:
            cleaned.append("finally")

    async def main() -> None:
        gevent.spawn(forever)
        await asyncio.sleep(0.01)

    run(main)
    assert cleaned == ["finally"]
    assert get_hub_if_exists() is None


def test_a_leftover_greenlet_can_use_asyncio_while_it_is_killed_at_stop() -> None:
    cleaned: list[str] = []

    async def close_connection() -> str:
        await asyncio.sleep(0.01)
        return "closed"

    def worker() -> None:
        try:
            gevent.sleep(100)
        finally:
            cleaned.append(bg.wait(close_connection()))

    async def main() -> None:
        gevent.spawn(worker)
        await asyncio.sleep(0.01)

    run(main)
    assert cleaned == ["closed"]


def test_repeated_runs_each_get_a_working_gevent() -> None:
    async def main(i: int) -> int:
        glet = gevent.spawn(lambda: (gevent.sleep(0.001), i)[1])
        return await bridges.awaitable(glet)

    assert [run(main, i) for i in range(5)] == list(range(5))


def test_gevent_works_inside_a_hub_entered_in_a_plain_asyncio_run() -> None:
    async def main() -> Any:
        async with bridges.Hub(frameworks=GEVENT):
            return await bridges.awaitable(gevent.spawn(lambda: gevent.sleep(0.001) or "ok"))

    assert asyncio.run(main()) == "ok"


def test_gevent_runs_on_uvloop() -> None:
    pytest.importorskip("uvloop")

    def in_greenlet() -> Any:
        gevent.sleep(0.001)
        return bg.wait(asyncio.sleep(0.001, result="uv"))

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(in_greenlet))

    assert run(main, loop_factory="uvloop") == "uv"


def test_an_idle_native_gevent_hub_is_set_aside_while_the_hub_runs_and_restored() -> None:
    gevent.sleep(0)  # creates and runs this thread's native hub
    native = get_hub_if_exists()
    assert native is not None
    try:

        async def main() -> Any:
            return bg.get_hub() is not native

        assert run(main) is True
        assert get_hub_if_exists() is native
        gevent.sleep(0)  # and it still works natively
    finally:
        native.destroy()


def test_a_busy_native_gevent_hub_refuses_with_a_clear_error() -> None:
    native = gevent.spawn_later(30, lambda: None)
    try:

        async def main() -> None:
            raise AssertionError("main must not run")

        with pytest.raises(bg.GeventHubBusyError, match="native gevent hub"):
            run(main)
    finally:
        native.kill()
        gevent.get_hub().destroy()


def test_the_loop_implements_gevents_loop_and_callback_interfaces() -> None:
    # gevent._interfaces is private (checked on gevent 23.9-26.9).
    from gevent._interfaces import ICallback, ILoop
    from zope.interface import verify

    async def main() -> Any:
        loop = bg.get_hub().loop
        verify.verifyObject(ILoop, loop)
        verify.verifyObject(ICallback, loop.run_callback(lambda: None))
        return getattr(loop, "async") == loop.async_, bool(loop.ptr)

    assert run(main) == (True, True)


def test_a_watchers_callback_and_args_are_checked_as_libev_checks_them() -> None:
    async def main() -> Any:
        timer = bg.get_hub().loop.timer(10)
        with pytest.raises(TypeError, match="callable"):
            timer.start(5)
        timer.start(print)
        try:
            with pytest.raises(TypeError, match="callable"):
                timer.callback = 5
            with pytest.raises(TypeError, match="tuple"):
                timer.args = [1]
            timer.args = (1, 2)
            return timer.args, timer.active
        finally:
            timer.stop()

    assert run(main) == ((1, 2), True)


def test_a_reused_fd_is_watched_again_after_a_socket_was_detached_without_closing_fd() -> None:
    import os

    import gevent.socket

    def scenario() -> Any:
        first, peer = gevent.socket.socketpair()
        with gevent.Timeout(0.01, False):
            first.recv(1)  # the loop now keeps first's fd registered
        fd = first.fileno()
        os.close(first.detach())  # closed behind gevent's back: no closing_fd()
        peer.close()
        left, right = gevent.socket.socketpair()
        reader, writer = (left, right) if left.fileno() == fd else (right, left)
        assert reader.fileno() == fd, "the OS did not reuse the fd number"
        with reader, writer:
            gevent.spawn_later(0.01, writer.sendall, b"x")  # after recv() started waiting
            with gevent.Timeout(5, False):
                return reader.recv(1)
            return None

    assert run_in_greenlet(scenario) == b"x"


@pytest.fixture(params=["epoll", "asyncio"])
def gevent_poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on both of the loop's fd layers (``BRIDGES_GEVENT_POLLER``)."""
    monkeypatch.setenv("BRIDGES_GEVENT_POLLER", request.param)
    return str(request.param)


@pytest.mark.usefixtures("gevent_poller")
def test_a_watcher_per_wait_beside_a_waiting_one_is_not_kept_alive_by_the_loop() -> None:
    import gc
    import weakref

    import gevent.socket

    def scenario() -> Any:
        reader, writer = gevent.socket.socketpair()
        with reader, writer:
            waiting = gevent.spawn(reader.recv, 1)  # a read watcher started throughout
            gevent.sleep(0.001)
            loop = gevent.get_hub().loop
            watchers = []
            for _ in range(100):
                # What gevent.socket.wait_write() does: a new watcher per wait.
                watcher = loop.io(reader.fileno(), 2)
                gevent.get_hub().wait(watcher)
                watchers.append(weakref.ref(watcher))
            del watcher
            gc.collect()
            alive = sum(ref() is not None for ref in watchers)
            writer.sendall(b"x")
            return alive, waiting.get(timeout=5)

    alive, received = run_in_greenlet(scenario)
    assert received == b"x"
    assert alive <= 8, f"{alive} of 100 finished watchers are still referenced"


@pytest.mark.usefixtures("gevent_poller")
def test_a_watcher_whose_fd_closed_before_it_started_raises_ebadf_and_stays_stopped() -> None:
    import os

    async def main() -> Any:
        loop = bg.get_hub().loop
        read_end, write_end = os.pipe()
        watcher = loop.io(read_end, 1)
        os.close(read_end)
        os.close(write_end)
        refs = loop.activecnt
        with pytest.raises(OSError) as failed:
            watcher.start(lambda: None)
        return failed.value.errno, watcher.active, loop.activecnt - refs

    error, active, refs_left = run(main)
    assert error == errno.EBADF
    assert (active, refs_left) == (False, 0)


@pytest.mark.usefixtures("gevent_poller")
def test_a_started_io_watcher_counts_in_activecnt_until_stopped_as_in_libev() -> None:
    """libev's ``activecnt``: each started watcher that has ``ref``, wherever its fd is.

    The loop counts its io watchers when asked rather than on every start
    and stop; this pins the count through re-starts, ``ref`` changes, a
    watcher of no events, and an fd that gevent closed under a waiting
    watcher (which stays started, as in libev, until stopped).
    """
    import os

    def scenario() -> list[int]:
        loop = gevent.get_hub().loop
        base = loop.activecnt
        read_end, write_end = os.pipe()
        reader = loop.io(read_end, 1)
        nothing = loop.io(write_end, 0)
        counts = []
        reader.start(lambda: None)
        reader.start(lambda: None)  # a started watcher started again counts once
        counts.append(loop.activecnt - base)
        reader.ref = False
        counts.append(loop.activecnt - base)
        reader.ref = True
        nothing.start(lambda: None)
        counts.append(loop.activecnt - base)
        nothing.stop()
        loop.closing_fd(read_end)  # wakes the reader, which stays started
        counts.append(loop.activecnt - base)
        reader.stop()
        counts.append(loop.activecnt - base)
        os.close(read_end)
        os.close(write_end)
        return counts

    assert run_in_greenlet(scenario) == [1, 0, 2, 1, 0]


def test_an_io_watcher_for_a_closed_fd_is_refused_with_ebadf_as_libev_does() -> None:
    import os

    import gevent.selectors

    async def main() -> Any:
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.close(write_end)
        with pytest.raises(OSError) as failed:
            bg.get_hub().loop.io(read_end, 1)
        selector = gevent.selectors.GeventSelector()
        # gevent 26 turns io()'s EBADF into "Invalid file descriptor"; 23.9 lets it out.
        with pytest.raises((ValueError, OSError)):
            selector.register(read_end, gevent.selectors.EVENT_READ)
        return failed.value.errno

    assert run(main) == errno.EBADF


@pytest.mark.usefixtures("gevent_poller")
def test_a_poll_started_on_a_socket_gevent_is_closing_reports_pollnval() -> None:
    import gevent.select
    import gevent.socket

    def scenario() -> Any:
        sock = gevent.socket.socket()
        fd = sock.fileno()
        gevent.spawn(sock.close)  # closes while the first poll waits
        poller = gevent.select.poll()
        poller.register(fd, gevent.select.POLLIN)
        first = poller.poll(1000)
        # gevent closes the fd only at the end of this loop pass: a poll
        # started now must still learn that it was closed.
        try:
            second = poller.poll(1000)
        except OSError as exc:
            # gevent 23.9 closes at once, and its poll lets io()'s EBADF out.
            second = exc.errno
        return fd, first, second

    fd, first, second = run_in_greenlet(scenario)
    assert first == [(fd, gevent.select.POLLIN)]
    assert second in ([(fd, gevent.select.POLLNVAL)], errno.EBADF)


def test_a_gevent_error_handler_that_raises_does_not_kill_the_get_hub() -> None:
    def raw_callback() -> None:
        raise Boom("from a raw callback")

    def broken_handle_error(*_args: Any) -> None:
        # gevent lets applications replace hub.handle_error; it "must not
        # raise", but a broken one must not take the hub greenlet down.
        raise RuntimeError("the error handler itself is broken")

    async def main() -> Any:
        ghub = bg.get_hub()
        ghub.handle_error = broken_handle_error
        ghub.loop.run_callback(raw_callback)
        await asyncio.sleep(0.02)
        del ghub.handle_error
        return await bridges.awaitable(gevent.spawn(lambda: gevent.sleep(0.001) or "alive"))

    assert run(main) == "alive"


def test_a_gevent_event_set_from_another_os_thread_wakes_the_awaiting_task() -> None:
    import threading

    async def main() -> Any:
        event = gevent.event.Event()
        thread = threading.Thread(target=event.set)
        thread.start()
        result = await asyncio.wait_for(bridges.awaitable(event), 10)
        thread.join()
        return result

    assert run(main) is True


def test_greenlets_busy_on_sockets_leave_asyncio_tasks_their_turns() -> None:
    async def main() -> int:
        left, right = gevent.socket.socketpair()
        stop = gevent.event.Event()

        def bounce(sock: Any, first: bool) -> None:
            if first:
                sock.sendall(b"x")
            while not stop.is_set():
                if not sock.recv(1):
                    return
                sock.sendall(b"x")

        players = [gevent.spawn(bounce, left, True), gevent.spawn(bounce, right, False)]
        turns = 0
        for _ in range(200):
            await asyncio.sleep(0)
            turns += 1
        stop.set()
        await bridges.awaitable(gevent.spawn(gevent.killall, players))
        left.close()
        right.close()
        return turns

    assert run(main) == 200


def test_nothing_is_lost_with_thousands_of_crossings_in_both_directions() -> None:
    async def double(i: int) -> int:
        await asyncio.sleep(0)
        return 2 * i

    def greenlet_side(i: int) -> int:
        gevent.sleep(0)
        return bg.wait(double(i))

    async def main() -> tuple[int, int]:
        glets = [gevent.spawn(greenlet_side, i) for i in range(2000)]
        spawned = [bg.spawn(double(i)) for i in range(2000)]
        from_greenlets = await asyncio.gather(*(bridges.awaitable(g) for g in glets))
        from_bg_spawn = await asyncio.gather(*(bridges.awaitable(g) for g in spawned))
        return sum(from_greenlets), sum(from_bg_spawn)

    expected = 2 * sum(range(2000))
    assert run(main) == (expected, expected)


def test_a_gevent_thread_pool_executor_future_is_awaitable() -> None:
    import gevent.threadpool

    error = ZeroDivisionError("in a thread")

    def fails() -> None:
        raise error

    async def main() -> list[Any]:
        executor = gevent.threadpool.ThreadPoolExecutor(2)
        try:
            result = await bridges.awaitable(executor.submit(lambda: "from a thread"))
            with pytest.raises(ZeroDivisionError) as info:
                await bridges.awaitable(executor.submit(fails))
        finally:
            executor.shutdown(wait=False)
        return [result, info.value is error]

    assert run(main) == ["from a thread", True]


def test_bg_wait_outside_a_hub_closes_its_coroutine() -> None:
    async def never() -> None:
        await asyncio.sleep(0)

    coro = never()
    with pytest.raises(bridges.NotAttachedError):
        bg.wait(coro)
    # closed: no "coroutine ... was never awaited" warning when it is collected
    assert coro.cr_frame is None


@pytest.mark.usefixtures("gevent_poller")
def test_an_io_callback_that_raises_leaves_the_other_ready_fds_their_callbacks() -> None:
    def scenario() -> Any:
        loop = gevent.get_hub().loop
        pairs = [socket.socketpair() for _ in range(4)]
        fired: list[int] = []
        errors: list[BaseException] = []
        gevent.get_hub().handle_error = lambda _context, _type, value, _tb: errors.append(value)
        watchers = []

        def ready(index: int) -> None:
            fired.append(index)
            watchers[index].stop()
            if index == 0:
                raise Boom("from the first io callback")

        for index, (left, right) in enumerate(pairs):
            right.send(b"x")
            watcher = loop.io(left.fileno(), 1)
            watcher.start(ready, index)
            watchers.append(watcher)
        gevent.sleep(0.05)
        del gevent.get_hub().handle_error
        for left, right in pairs:
            left.close()
            right.close()
        return sorted(fired), [str(error) for error in errors]

    fired, errors = run_in_greenlet(scenario)
    assert fired == [0, 1, 2, 3]
    assert errors == ["from the first io callback"]


@pytest.mark.usefixtures("gevent_poller")
def test_an_io_watcher_started_with_pass_events_gets_the_events_that_woke_it() -> None:
    from gevent.core import READ, WRITE

    def scenario() -> Any:
        loop = gevent.get_hub().loop
        left, right = socket.socketpair()
        got = gevent.event.AsyncResult()
        watcher = loop.io(left.fileno(), READ | WRITE)
        watcher.start(got.set, pass_events=True)
        first = got.get(timeout=5)  # writable at once
        watcher.stop()
        right.send(b"x")
        got = gevent.event.AsyncResult()
        reader = loop.io(left.fileno(), READ)
        reader.start(lambda events, tag: got.set((events, tag)), "tag", pass_events=True)
        second = got.get(timeout=5)
        reader.stop()
        left.close()
        right.close()
        return first, second

    first, second = run_in_greenlet(scenario)
    assert first & WRITE
    assert second == (READ, "tag")


def test_a_check_watcher_started_twice_runs_once_per_pass_and_stops_for_good() -> None:
    def scenario() -> Any:
        loop = gevent.get_hub().loop
        calls: list[int] = []
        watcher = loop.check()
        watcher.start(lambda: calls.append(loop.iteration))
        watcher.start(lambda: calls.append(loop.iteration))  # a restart, as libev allows
        for _ in range(3):
            gevent.sleep(0.001)  # a timer: a pass of its own each time
        watcher.stop()
        stopped_at = loop.iteration
        gevent.sleep(0.05)
        # Once stopped, nothing is left to run on every pass: the hub is idle.
        return len(calls), len(set(calls)), loop.iteration - stopped_at

    calls, passes, passes_after_stop = run_in_greenlet(scenario)
    assert passes >= 3
    assert calls == passes
    assert passes_after_stop < 20
