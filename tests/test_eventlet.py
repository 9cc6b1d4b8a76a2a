"""eventlet on the hub: both directions, blocking rules, eventlet's own primitives and servers."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
from typing import Any

import pytest

pytest.importorskip("eventlet")

import eventlet
import eventlet.event
import eventlet.hubs
import eventlet.queue
import eventlet.semaphore
import eventlet.wsgi
from _reports import Reports
from greenlet import GreenletExit

import bridges
from bridges import eventlet as be

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.fixture(params=[None, "uvloop"], ids=["stdlib", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> Any:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param


def run(main: Any, loop_factory: Any = None, **kwargs: Any) -> Any:
    return bridges.run(main, frameworks=["eventlet"], loop_factory=loop_factory, **kwargs)


def run_reporting(main: Any, loop_factory: Any = None) -> tuple[Any, Reports]:
    reports = Reports()

    async def wrapper() -> Any:
        reports.install()
        return await main()

    return run(wrapper, loop_factory), reports


class Boom(Exception):
    pass


# -- asyncio awaits eventlet --------------------------------------------------


def test_awaiting_a_greenthread_returns_the_same_result_object(loop_factory: Any) -> None:
    marker = object()

    def work() -> object:
        eventlet.sleep(0.01)
        return marker

    async def main() -> Any:
        return await bridges.awaitable(eventlet.spawn(work))

    assert run(main, loop_factory) is marker


def test_awaiting_a_failed_greenthread_raises_the_same_exception_with_its_frames(
    loop_factory: Any,
) -> None:
    error = Boom()

    def fail_in_greenthread() -> None:
        eventlet.sleep(0)
        raise error

    async def main() -> BaseException:
        with pytest.raises(Boom) as caught:
            await bridges.awaitable(eventlet.spawn(fail_in_greenthread))
        return caught.value

    caught, reports = run_reporting(main, loop_factory)
    assert caught is error
    frames = [frame.name for frame in __import__("traceback").extract_tb(caught.__traceback__)]
    assert "fail_in_greenthread" in frames
    assert reports.contexts == []


def test_killing_a_greenthread_cancels_the_task_awaiting_it(loop_factory: Any) -> None:
    async def main() -> str:
        gt = eventlet.spawn(eventlet.sleep, 10)
        task = asyncio.ensure_future(bridges.awaitable(gt))
        await asyncio.sleep(0.01)
        eventlet.spawn(gt.kill)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert run(main, loop_factory) == "cancelled"


def test_cancelling_the_awaiting_task_kills_the_greenthread_and_runs_its_finally(
    loop_factory: Any,
) -> None:
    seen: list[str] = []

    def sleeper() -> None:
        try:
            eventlet.sleep(10)
        except GreenletExit:
            seen.append("killed")
            raise
        finally:
            seen.append("finally")

    async def main() -> bool:
        gt = eventlet.spawn(sleeper)

        async def waiter() -> None:
            await bridges.awaitable(gt)

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return bool(gt.dead)

    assert run(main, loop_factory) is True
    assert seen == ["killed", "finally"]


def test_awaiting_an_event_returns_the_value_a_greenthread_sends(loop_factory: Any) -> None:
    marker = object()

    async def main() -> Any:
        event = eventlet.event.Event()
        eventlet.spawn_after(0.01, event.send, marker)
        return await bridges.awaitable(event)

    assert run(main, loop_factory) is marker


def test_awaiting_an_event_sent_an_exception_raises_that_exception(loop_factory: Any) -> None:
    error = Boom()

    async def main() -> BaseException:
        event = eventlet.event.Event()
        eventlet.spawn_after(0.01, event.send_exception, error)
        with pytest.raises(Boom) as caught:
            await bridges.awaitable(event)
        return caught.value

    caught, reports = run_reporting(main, loop_factory)
    assert caught is error
    assert reports.contexts == []


def test_cancelling_an_event_await_leaves_no_waiter(loop_factory: Any) -> None:
    async def main() -> tuple[bool, Any]:
        event = eventlet.event.Event()
        task = asyncio.ensure_future(bridges.awaitable(event))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        event.send("late")  # nobody waits: nothing is woken, nothing fails
        later = await bridges.awaitable(event)
        return task.cancelled(), later

    assert run(main, loop_factory) == (True, "late")


def test_an_event_sent_before_the_await_gives_its_value_at_once(loop_factory: Any) -> None:
    async def main() -> Any:
        event = eventlet.event.Event()
        event.send("already")
        return await bridges.awaitable(event)

    assert run(main, loop_factory) == "already"


def test_awaiting_a_green_pool_waits_for_all_its_greenthreads(loop_factory: Any) -> None:
    done: list[int] = []

    async def main() -> int:
        pool = eventlet.GreenPool()
        for i in range(5):
            pool.spawn(lambda i=i: (eventlet.sleep(0.01 * i), done.append(i)))
        await bridges.awaitable(pool)
        return pool.running()

    assert run(main, loop_factory) == 0
    assert sorted(done) == [0, 1, 2, 3, 4]


def test_native_await_of_greenthread_works_on_the_hub(loop_factory: Any) -> None:
    # eventlet's own GreenThread.__await__ checks for its asyncio hub class and
    # uses hub.loop: the hub on the bridges loop is one.
    async def main() -> Any:
        return await eventlet.spawn(lambda: "native")

    assert run(main, loop_factory) == "native"


def test_spawned_greenthread_sees_the_spawners_context(loop_factory: Any) -> None:
    async def main() -> list[str]:
        VAR.set("from asyncio")
        first = await bridges.awaitable(eventlet.spawn(VAR.get))
        pool = eventlet.GreenPool()
        second = await bridges.awaitable(pool.spawn(VAR.get))
        third = await bridges.awaitable(eventlet.spawn_after(0.001, VAR.get))
        return [first, second, third]

    assert run(main, loop_factory) == ["from asyncio"] * 3


def test_greenthreads_run_on_the_hubs_thread(loop_factory: Any) -> None:
    async def main() -> bool:
        here = threading.get_ident()
        there = await bridges.awaitable(eventlet.spawn(threading.get_ident))
        return here == there

    assert run(main, loop_factory) is True


# -- eventlet awaits asyncio ---------------------------------------------------


def test_be_wait_in_a_greenthread_returns_the_coroutines_result_object(
    loop_factory: Any,
) -> None:
    marker = object()

    async def produce() -> object:
        await asyncio.sleep(0.01)
        return marker

    async def main() -> Any:
        return await bridges.awaitable(eventlet.spawn(be.wait, produce()))

    assert run(main, loop_factory) is marker


def test_be_wait_raises_the_same_exception_the_coroutine_raised(loop_factory: Any) -> None:
    error = Boom()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise error

    def in_greenthread() -> BaseException:
        with pytest.raises(Boom) as caught:
            be.wait(fails())
        return caught.value

    async def main() -> Any:
        return await bridges.awaitable(eventlet.spawn(in_greenthread))

    assert run(main, loop_factory) is error


def test_be_wait_carries_the_greenthreads_context_into_the_coroutine(loop_factory: Any) -> None:
    async def read() -> str:
        return VAR.get()

    def in_greenthread() -> str:
        VAR.set("from eventlet")
        return be.wait(read())

    async def main() -> Any:
        return await bridges.awaitable(eventlet.spawn(in_greenthread))

    assert run(main, loop_factory) == "from eventlet"


def test_an_eventlet_timeout_around_be_wait_cancels_the_awaitable(loop_factory: Any) -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    def in_greenthread() -> str:
        try:
            with eventlet.Timeout(0.02):
                be.wait(slow())
        except eventlet.Timeout:
            return "timed out"
        return "finished"

    async def main() -> Any:
        result = await bridges.awaitable(eventlet.spawn(in_greenthread))
        await asyncio.sleep(0)
        return result

    assert run(main, loop_factory) == "timed out"
    assert seen == ["cancelled"]


def test_killing_a_greenthread_in_be_wait_cancels_the_awaitable(loop_factory: Any) -> None:
    async def main() -> bool:
        task = asyncio.ensure_future(asyncio.sleep(10))
        gt = eventlet.spawn(be.wait, task)
        await asyncio.sleep(0.01)
        gt.kill()
        await asyncio.sleep(0)
        return task.cancelled()

    assert run(main, loop_factory) is True


def test_a_wake_up_scheduled_before_a_kill_does_not_resume_the_greenthread_later(
    loop_factory: Any,
) -> None:
    async def main() -> list[Any]:
        future = asyncio.get_running_loop().create_future()
        seen: list[Any] = []

        def waits() -> None:
            try:
                be.wait(future)
            except Boom:
                seen.append("killed")
            started = asyncio.get_running_loop().time()
            eventlet.sleep(0.2)
            # A stale wake-up would end the sleep at once (uvloop's clock
            # counts whole milliseconds: 0.2 s may read as 0.19999...).
            seen.append(asyncio.get_running_loop().time() - started >= 0.15)

        gt = eventlet.spawn(waits)
        await asyncio.sleep(0.01)
        future.set_result("done")  # be.wait's wake-up is now scheduled on the loop
        gt.kill(Boom())  # thrown in at once: the wait is over before the wake-up runs
        await bridges.awaitable(gt)
        return seen

    assert run(main, loop_factory) == ["killed", True]


def test_be_spawn_ends_with_the_awaitables_result(loop_factory: Any) -> None:
    marker = object()

    async def produce() -> object:
        await asyncio.sleep(0)
        return marker

    async def main() -> Any:
        gt = be.spawn(produce())
        return await bridges.awaitable(eventlet.spawn(gt.wait))

    assert run(main, loop_factory) is marker


def test_killing_a_be_spawn_greenthread_cancels_its_task(loop_factory: Any) -> None:
    async def main() -> bool:
        task = asyncio.ensure_future(asyncio.sleep(10))
        gt = be.spawn(task)
        await asyncio.sleep(0.01)
        gt.kill()
        await asyncio.sleep(0)
        return task.cancelled()

    assert run(main, loop_factory) is True


def test_cancelling_a_be_spawn_task_ends_the_greenthread_with_greenlet_exit(
    loop_factory: Any,
) -> None:
    def waits_for(gt: Any) -> str:
        try:
            gt.wait()
        except GreenletExit:
            return "GreenletExit"
        return "returned"

    async def main() -> Any:
        task = asyncio.ensure_future(asyncio.sleep(10))
        gt = be.spawn(task)
        watcher = eventlet.spawn(waits_for, gt)
        await asyncio.sleep(0.01)
        task.cancel()
        return await bridges.awaitable(watcher)

    assert run(main, loop_factory) == "GreenletExit"


# -- the one rule: asyncio code without a portal does not block ---------------------
# (with portals, the default, such calls suspend only their task:
# tests/test_eventlet_portals.py)


@pytest.mark.parametrize(
    "blocking",
    [
        pytest.param(lambda: eventlet.sleep(0.01), id="sleep"),
        pytest.param(lambda: eventlet.event.Event().wait(), id="event-wait"),
        pytest.param(lambda: eventlet.spawn(eventlet.sleep, 1).wait(), id="greenthread-wait"),
        pytest.param(lambda: eventlet.queue.Queue().get(), id="queue-get"),
    ],
)
def test_an_eventlet_blocking_call_in_a_coroutine_without_portals_raises_instead_of_stalling(
    blocking: Any, loop_factory: Any
) -> None:
    async def main() -> str:
        with pytest.raises(be.HubOwnsLoopError, match="no greenthread to suspend"):
            blocking()
        # the loop still runs eventlet afterwards
        return await bridges.awaitable(eventlet.spawn(lambda: "still running"))

    assert run(main, loop_factory, portals=False) == "still running"


def test_be_wait_from_a_coroutine_without_portals_raises_and_closes_the_coroutine(
    loop_factory: Any,
) -> None:
    async def never_awaited() -> None:
        await asyncio.sleep(0)

    async def main() -> Any:
        coro = never_awaited()
        with pytest.raises(be.HubOwnsLoopError):
            be.wait(coro)
        return coro.cr_frame

    assert run(main, loop_factory, portals=False) is None


def test_an_eventlet_timeout_in_asyncio_code_without_portals_raises(loop_factory: Any) -> None:
    async def main() -> str:
        with pytest.raises(be.HubOwnsLoopError, match=r"asyncio\.timeout"):
            eventlet.Timeout(0.01)
        await asyncio.sleep(0.03)  # nothing is thrown into the loop later
        return "ok"

    assert run(main, loop_factory, portals=False) == "ok"


@pytest.mark.parametrize("portals", [True, False], ids=["portals", "no-portals"])
def test_killing_a_greenthread_from_a_coroutine_runs_its_finally_at_once(
    loop_factory: Any, portals: bool
) -> None:
    seen: list[str] = []

    def sleeper() -> None:
        try:
            eventlet.sleep(10)
        finally:
            seen.append("finally")

    async def main() -> bool:
        gt = eventlet.spawn(sleeper)
        await asyncio.sleep(0.01)
        gt.kill()
        return bool(gt.dead)

    assert run(main, loop_factory, portals=portals) is True
    assert seen == ["finally"]


# -- errors nobody handled -----------------------------------------------------------


def test_exception_nobody_waits_for_is_reported_once(loop_factory: Any) -> None:
    error = Boom("nobody waits")

    async def main() -> None:
        eventlet.spawn(lambda: (_ for _ in ()).throw(error))
        await asyncio.sleep(0.02)

    _, reports = run_reporting(main, loop_factory)
    assert reports.exceptions == [error]
    assert "GreenThread" in reports.messages[0]


def test_hub_exceptions_on_prints_a_failed_greenthread_as_eventlet_does(
    loop_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # eventlet.debug.hub_exceptions(True) asks eventlet's hub to print each
    # failure to stderr (eventlet's wsgi_test relies on it); the report to
    # the loop's exception handler goes on as well.
    import eventlet.debug
    import eventlet.greenpool

    error = Boom("printed as eventlet does")
    pool_debug = eventlet.greenpool.DEBUG

    async def main() -> None:
        eventlet.debug.hub_exceptions(True)
        try:
            eventlet.spawn(lambda: (_ for _ in ()).throw(error))
            await asyncio.sleep(0.02)
        finally:
            eventlet.debug.hub_exceptions(False)
            eventlet.greenpool.DEBUG = pool_debug
        eventlet.spawn(lambda: (_ for _ in ()).throw(Boom("not printed")))
        await asyncio.sleep(0.02)

    _, reports = run_reporting(main, loop_factory)
    printed = capsys.readouterr().err
    assert "Boom: printed as eventlet does" in printed
    assert "not printed" not in printed
    assert len(reports.exceptions) == 2


def test_exception_a_greenthread_waits_for_is_not_reported(loop_factory: Any) -> None:
    error = Boom("waited for")

    def fails() -> None:
        eventlet.sleep(0)
        raise error

    def waiter(gt: Any) -> BaseException:
        with pytest.raises(Boom) as caught:
            gt.wait()
        return caught.value

    async def main() -> Any:
        gt = eventlet.spawn(fails)
        return await bridges.awaitable(eventlet.spawn(waiter, gt))

    caught, reports = run_reporting(main, loop_factory)
    assert caught is error
    assert reports.contexts == []


def test_an_exception_in_a_timer_callback_is_reported_and_the_hub_goes_on(
    loop_factory: Any,
) -> None:
    error = Boom("in a timer")

    def raise_it() -> None:
        raise error

    async def main() -> str:
        eventlet.hubs.get_hub().schedule_call_global(0, raise_it)
        await asyncio.sleep(0.01)
        return await bridges.awaitable(eventlet.spawn(lambda: "goes on"))

    result, reports = run_reporting(main, loop_factory)
    assert result == "goes on"
    assert reports.exceptions == [error]


# -- fds, servers and eventlet's primitives -------------------------------------------


def test_eventlet_waits_on_fds_through_a_poller_the_hub_registry_owns(loop_factory: Any) -> None:
    # eventlet's fds are in a private epoll, whose own fd is registered with
    # the loop through the hub's registry: asyncio code watching the same fd
    # takes nothing from eventlet, and both are woken.
    async def main() -> tuple[list[str], Any, bool]:
        ours, peer = socket.socketpair()
        ours.setblocking(False)
        hub = bridges.current_hub()
        green = eventlet.green.socket.socket(fileno=ours.detach())
        owners = sorted(set(hub.fd_owners()["readers"].values()))

        gt = eventlet.spawn(green.recv, 10)
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        seen_by_asyncio = loop.create_future()
        loop.add_reader(
            green.fileno(), lambda: seen_by_asyncio.done() or seen_by_asyncio.set_result(True)
        )
        peer.send(b"x")
        received = await asyncio.wait_for(bridges.awaitable(gt), 10)
        both = await asyncio.wait_for(seen_by_asyncio, 10)
        loop.remove_reader(green.fileno())
        green.close()
        peer.close()
        return owners, received, both

    owners, received, both = run(main, loop_factory)
    assert "eventlet" in owners
    assert received == b"x"
    assert both is True


def test_a_listener_that_stays_is_called_on_each_pass_while_its_fd_is_ready(
    loop_factory: Any,
) -> None:
    # eventlet's hubs are level-triggered: a listener added once (not a
    # trampoline's, which goes after one wake-up) is called again while its
    # fd stays readable, until it is removed.
    def scenario() -> int:
        ours, peer = socket.socketpair()
        hub = eventlet.hubs.get_hub()
        calls: list[int] = []
        done = eventlet.event.Event()

        def ready(fileno: int) -> None:
            calls.append(fileno)
            if len(calls) == 3:
                hub.remove(listener)
                done.send(len(calls))

        listener = hub.add(hub.READ, ours.fileno(), ready, lambda exc: None, lambda: None)
        peer.send(b"x")  # never read: the fd stays readable
        with eventlet.Timeout(5):
            count = done.wait()
        eventlet.sleep(0.05)  # removed: not called any more
        ours.close()
        peer.close()
        return count + len(calls) - 3

    async def main() -> int:
        return await asyncio.wait_for(bridges.awaitable(eventlet.spawn(scenario)), 10)

    assert run(main, loop_factory) == 3


def test_a_writer_and_a_reader_of_one_socket_are_woken_each_by_its_own_event(
    loop_factory: Any,
) -> None:
    def scenario() -> tuple[bytes, int]:
        ours, peer = eventlet.green.socket.socketpair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = b"y" * (1 << 20)
        received = eventlet.spawn(ours.recv, 10)
        sent = eventlet.spawn(ours.sendall, big)  # fills the buffer, then waits to write
        eventlet.sleep(0.05)
        peer.sendall(b"x")  # wakes the reader; the writer still waits
        with eventlet.Timeout(5):
            first = received.wait()
        drained = 0
        while drained < len(big):  # wakes the writer as the buffer empties
            drained += len(peer.recv(1 << 16))
        with eventlet.Timeout(5):
            sent.wait()
        ours.close()
        peer.close()
        return first, drained

    async def main() -> tuple[bytes, int]:
        return await asyncio.wait_for(bridges.awaitable(eventlet.spawn(scenario)), 20)

    assert run(main, loop_factory) == (b"x", 1 << 20)


def test_an_fd_number_reused_after_a_timed_out_wait_is_watched_again(loop_factory: Any) -> None:
    # The first socket's wait ends without its event (a timeout) and the
    # socket closes; the next socket gets the same fd number and must be
    # watched from scratch.
    def scenario() -> tuple[bool, bool, bytes]:
        first, first_peer = eventlet.green.socket.socketpair()
        first.settimeout(0.01)
        try:
            first.recv(10)
        except socket.timeout:
            timed_out = True
        else:
            timed_out = False
        number = first.fileno()
        first.close()
        first_peer.close()
        second, second_peer = eventlet.green.socket.socketpair()
        same = number in (second.fileno(), second_peer.fileno())
        if second_peer.fileno() == number:
            second, second_peer = second_peer, second
        gt = eventlet.spawn(second.recv, 10)
        eventlet.sleep(0.01)
        second_peer.sendall(b"again")
        with eventlet.Timeout(5):
            got = gt.wait()
        second.close()
        second_peer.close()
        return timed_out, same, got

    async def main() -> tuple[bool, bool, bytes]:
        return await asyncio.wait_for(bridges.awaitable(eventlet.spawn(scenario)), 10)

    timed_out, same, got = run(main, loop_factory)
    assert timed_out
    assert same
    assert got == b"again"


def test_an_eventlet_wsgi_server_answers_asyncio_and_green_clients(loop_factory: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello " + environ["PATH_INFO"].encode()]

    def green_client(port: int) -> bytes:
        conn = eventlet.connect(("127.0.0.1", port))
        conn.sendall(b"GET /green HTTP/1.0\r\n\r\n")
        chunks = []
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        conn.close()
        return b"".join(chunks)

    async def main() -> tuple[bytes, bytes]:
        listener = eventlet.listen(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /asyncio HTTP/1.0\r\n\r\n")
        from_asyncio = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        from_green = await asyncio.wait_for(
            bridges.awaitable(eventlet.spawn(green_client, port)), 10
        )
        server.kill()
        listener.close()
        return from_asyncio, from_green

    from_asyncio, from_green = run(main, loop_factory)
    assert from_asyncio.startswith(b"HTTP/1.1 200 OK")
    assert from_asyncio.endswith(b"hello /asyncio")
    assert from_green.endswith(b"hello /green")


def test_sleep_0_first_runs_the_greenthreads_whose_fds_are_ready(loop_factory: Any) -> None:
    # eventlet's hub polls its fds before the timers added since its last
    # poll: a greenthread whose data arrived runs before sleep(0) returns.
    def scenario() -> list[bytes]:
        ours, peer = eventlet.green.socket.socketpair()
        received: list[bytes] = []
        reader = eventlet.spawn(lambda: received.append(ours.recv(10)))
        eventlet.sleep(0)  # the reader blocks in recv
        peer.sendall(b"x")
        eventlet.sleep(0)
        seen = list(received)
        reader.wait()
        ours.close()
        peer.close()
        return seen

    async def main() -> list[bytes]:
        return await asyncio.wait_for(bridges.awaitable(eventlet.spawn(scenario)), 10)

    assert run(main, loop_factory) == [b"x"]


def test_an_eventlet_wsgi_server_ends_idle_connections_when_its_listener_closes(
    loop_factory: Any,
) -> None:
    # eventlet's own test (wsgi_test's test_close_idle_connections_listen_socket_closed):
    # shut down and close the listening socket, and the server's idle
    # keep-alive connections end, so that its pool drains.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def scenario() -> tuple[bytes, bool]:
        pool = eventlet.GreenPool()
        listener = eventlet.listen(("127.0.0.1", 0))
        server = eventlet.spawn(
            eventlet.wsgi.server, listener, app, custom_pool=pool, log_output=False
        )
        eventlet.sleep(0)
        client = eventlet.connect(listener.getsockname())
        client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            answer += client.recv(4096)
        listener.shutdown(socket.SHUT_RDWR)
        eventlet.sleep(0)
        listener.close()
        eventlet.sleep(0)
        drained = True
        try:
            with eventlet.Timeout(1):
                pool.waitall()
        except eventlet.Timeout:
            drained = False
        server.kill()
        client.close()
        return answer, drained

    async def main() -> tuple[bytes, bool]:
        return await asyncio.wait_for(bridges.awaitable(eventlet.spawn(scenario)), 10)

    answer, drained = run(main, loop_factory)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert drained


def test_queue_and_semaphore_work_between_greenthreads(loop_factory: Any) -> None:
    async def main() -> tuple[list[int], int]:
        queue: eventlet.queue.Queue[int] = eventlet.queue.Queue(maxsize=1)
        sem = eventlet.semaphore.Semaphore(2)
        inside: list[int] = []
        peak = [0]

        def producer() -> None:
            for i in range(5):
                queue.put(i)

        def consumer() -> list[int]:
            return [queue.get() for _ in range(5)]

        def limited() -> None:
            with sem:
                inside.append(1)
                peak[0] = max(peak[0], len(inside))
                eventlet.sleep(0.005)
                inside.pop()

        eventlet.spawn(producer)
        got = await bridges.awaitable(eventlet.spawn(consumer))
        pool = eventlet.GreenPool()
        for _ in range(6):
            pool.spawn(limited)
        await bridges.awaitable(pool)
        return got, peak[0]

    assert run(main, loop_factory) == ([0, 1, 2, 3, 4], 2)


def test_greenthreads_spawned_together_start_in_spawn_order(loop_factory: Any) -> None:
    async def main() -> list[int]:
        started: list[int] = []
        for i in range(5):
            eventlet.spawn(started.append, i)
        await asyncio.sleep(0)
        return started

    assert run(main, loop_factory) == [0, 1, 2, 3, 4]


def test_a_timer_due_now_that_is_cancelled_never_runs(loop_factory: Any) -> None:
    def greenthread() -> list[str]:
        called: list[str] = []
        hub = eventlet.hubs.get_hub()
        timer = hub.schedule_call_global(0, called.append, "cancelled")
        hub.schedule_call_global(0, called.append, "kept")
        timer.cancel()
        eventlet.sleep(0.01)
        return called

    async def main() -> list[str]:
        return await bridges.awaitable(eventlet.spawn(greenthread))  # type: ignore[no-any-return]

    assert run(main, loop_factory) == ["kept"]


def test_awaiting_a_fresh_greenthread_that_does_not_block_settles_it_at_once(
    loop_factory: Any,
) -> None:
    async def main() -> tuple[bool, list[str], list[str]]:
        runs: list[str] = []
        eventlet.spawn(runs.append, "spawned first")
        gt = eventlet.spawn(runs.append, "awaited")
        future = bridges.awaitable(gt)
        settled = future.done()  # type: ignore[attr-defined]
        before = list(runs)
        await future
        await asyncio.sleep(0.01)
        return settled, before, runs

    settled, before, runs = run(main, loop_factory)
    # Started by the await itself; the one spawned before it still runs, once.
    assert (settled, before) == (True, ["awaited"])
    assert runs == ["awaited", "spawned first"]


def test_be_wait_resumes_each_greenthread_with_its_own_result(loop_factory: Any) -> None:
    async def main() -> list[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(3)]

        def waiter(i: int) -> tuple[int, int]:
            return i, be.wait(futures[i])

        gts = [eventlet.spawn(waiter, i) for i in range(3)]
        await asyncio.sleep(0)
        for i in reversed(range(3)):
            futures[i].set_result(i * 10)
            await asyncio.sleep(0)
        return [await bridges.awaitable(gt) for gt in gts]

    assert run(main, loop_factory) == [(0, 0), (1, 10), (2, 20)]


def test_the_first_greenthread_of_a_run_failing_after_be_wait_hands_its_exception_over(
    loop_factory: Any,
) -> None:
    # Started straight from the await, before eventlet's hub greenlet ever
    # ran: its exception must still go to the awaiting task, not to the loop.
    async def fail() -> None:
        await asyncio.sleep(0)
        raise Boom("from asyncio")

    def greenthread() -> None:
        be.wait(fail())

    async def main() -> str:
        with pytest.raises(Boom) as raised:
            await bridges.awaitable(eventlet.spawn(greenthread))
        return str(raised.value)

    result, reports = run_reporting(main, loop_factory)
    assert result == "from asyncio"
    assert reports.contexts == []


def test_spawn_after_runs_later_and_can_be_cancelled(loop_factory: Any) -> None:
    async def main() -> tuple[Any, bool]:
        later = eventlet.spawn_after(0.01, lambda: "later")
        cancelled = eventlet.spawn_after(0.01, lambda: "never")
        cancelled.cancel()
        result = await bridges.awaitable(later)
        await asyncio.sleep(0.02)
        return result, bool(cancelled.dead)

    assert run(main, loop_factory) == ("later", True)


def test_tpool_works_in_every_run(loop_factory: Any) -> None:
    from eventlet import tpool

    async def main() -> tuple[int, bool]:
        here = threading.get_ident()
        ident = await bridges.awaitable(eventlet.spawn(tpool.execute, threading.get_ident))
        return ident, ident != here

    for _ in range(2):
        _, in_another_thread = run(main, loop_factory)
        assert in_another_thread


def test_green_subprocess_runs_a_child(loop_factory: Any) -> None:
    from eventlet.green import subprocess

    async def main() -> bytes:
        return await bridges.awaitable(
            eventlet.spawn(subprocess.check_output, ["echo", "from a child"], timeout=30)
        )

    assert run(main, loop_factory) == b"from a child\n"


# -- lifecycle ----------------------------------------------------------------------


def test_greenthreads_alive_at_stop_are_killed_and_their_finally_runs(loop_factory: Any) -> None:
    seen: list[str] = []

    def forever() -> None:
        try:
            eventlet.sleep(100)
        finally:
            seen.append("finally")

    async def main() -> None:
        eventlet.spawn(forever)
        eventlet.spawn_after(100, forever)
        await asyncio.sleep(0.01)

    run(main, loop_factory)
    assert seen == ["finally"]


def test_detach_restores_the_previous_hub(loop_factory: Any) -> None:
    from bridges.eventlet import _compat

    before = _compat.current_hub()

    async def main() -> bool:
        return isinstance(eventlet.hubs.get_hub(), be.LoopHub)

    assert run(main, loop_factory) is True
    assert _compat.current_hub() is before


def test_eventlet_works_in_every_run(loop_factory: Any) -> None:
    async def main() -> str:
        return await bridges.awaitable(eventlet.spawn(lambda: (eventlet.sleep(0.001), "ok")[1]))

    assert [run(main, loop_factory) for _ in range(3)] == ["ok"] * 3


# -- beside gevent ------------------------------------------------------------------


def test_gevent_and_eventlet_share_the_hub_when_neither_patched(loop_factory: Any) -> None:
    # Each framework keeps its own hub greenlet on the one loop; their
    # primitives meet through asyncio (bg.wait / be.wait on the other's).
    gevent = pytest.importorskip("gevent")
    from bridges import gevent as bg

    def green(n: int) -> int:
        eventlet.sleep(0.001)
        return n + 1

    def gevent_side() -> int:
        gevent.sleep(0.001)
        return bg.wait(eventlet.spawn(green, 1))

    def eventlet_side() -> int:
        return be.wait(gevent.spawn(gevent_side)) * 10

    async def main() -> tuple[int, list[str]]:
        result = await bridges.awaitable(eventlet.spawn(eventlet_side))
        return result, list(bridges.current_hub().frameworks)

    result, frameworks = bridges.run(
        main, frameworks=["gevent", "eventlet"], loop_factory=loop_factory
    )
    assert result == 20
    assert frameworks == ["gevent", "eventlet"]


def test_an_eventlet_blocking_call_in_a_gevent_greenlet_raises(loop_factory: Any) -> None:
    gevent = pytest.importorskip("gevent")

    def in_gevent() -> str:
        with pytest.raises(be.HubOwnsLoopError, match="gevent greenlet"):
            eventlet.sleep(0)
        return "refused"

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(in_gevent))

    result = bridges.run(main, frameworks=["gevent", "eventlet"], loop_factory=loop_factory)
    assert result == "refused"


def test_importing_bridges_eventlet_and_its_adapter_imports_no_eventlet(tmp_path: Any) -> None:
    from _gevent_helpers import run_script

    source = (
        "import json, sys\n"
        "import bridges.eventlet\n"
        "from bridges.eventlet._adapter import EventletAdapter\n"
        "print(json.dumps([EventletAdapter.is_available(), 'eventlet' in sys.modules]))\n"
    )
    assert run_script(tmp_path, source) == [True, False]
