"""Tornado's IOLoop on the hub: one IOLoop per hub, its lifecycle, errors, executor, clocks, fds.

Each trap in DESIGN.md's Tornado notes has a test here or in test_tornado_gen.py
whose name says which.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import socket
import threading
import time
import warnings
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
from _reports import Reports
from _tornado_helpers import LOOPS, Served, run_tornado
from tornado import gen
from tornado.concurrent import run_on_executor
from tornado.ioloop import IOLoop, PeriodicCallback

import bridges
from bridges import tornado as btn

pytestmark = pytest.mark.timeout(60)


# -- one IOLoop per hub ------------------------------------------------------------


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_inside_the_hub_ioloop_current_is_the_hubs_ioloop_on_the_hubs_loop(
    loop_factory: str,
) -> None:
    async def main() -> tuple[bool, bool]:
        ioloop = btn.ioloop()
        return IOLoop.current() is ioloop, ioloop.asyncio_loop is asyncio.get_running_loop()

    assert run_tornado(main, loop_factory=loop_factory) == (True, True)


def test_repeated_runs_each_bind_a_fresh_ioloop_and_leave_no_binding_behind() -> None:
    async def main() -> IOLoop:
        return btn.ioloop()

    ioloops = [run_tornado(main) for _ in range(4)]
    assert len({id(ioloop) for ioloop in ioloops}) == 4
    assert not any(ioloop in IOLoop._ioloop_for_asyncio.values() for ioloop in ioloops)


def test_the_hub_adopts_an_ioloop_already_bound_to_its_loop_instead_of_making_a_second() -> None:
    async def main() -> tuple[bool, bool]:
        existing = IOLoop.current()  # Tornado binds one lazily, as legacy code would
        async with bridges.Hub(frameworks=["tornado"]):
            adopted = btn.ioloop() is existing
        still_bound = IOLoop.current() is existing
        return adopted, still_bound

    assert asyncio.run(main()) == (True, True)


def test_an_adopted_ioloops_handlers_registered_inside_the_hub_keep_firing_after_it_stops() -> None:
    async def main() -> tuple[bytes, dict[int, str]]:
        ioloop = IOLoop.current()
        here, there = socket.socketpair()
        here.setblocking(False)
        received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def on_readable(fd: Any, events: int) -> None:
            if not received.done():
                received.set_result(here.recv(16))

        try:
            async with bridges.Hub(frameworks=["tornado"]) as hub:
                ioloop.add_handler(here, on_readable, IOLoop.READ)
                owners = hub.fd_owners()["readers"]
            there.send(b"after")
            data = await asyncio.wait_for(received, 10)
        finally:
            ioloop.remove_handler(here)
            here.close()
            there.close()
        return data, owners

    data, owners = asyncio.run(main())
    assert data == b"after"
    assert "tornado" in owners.values()


def test_ioloop_outside_a_hub_says_to_run_one() -> None:
    with pytest.raises(bridges.HubNotRunningError, match=r"bridges\.run"):
        btn.ioloop()


def test_ioloop_on_a_hub_without_tornado_says_to_attach_it() -> None:
    async def main() -> None:
        btn.ioloop()

    with pytest.raises(btn.NotAttachedError, match=re.escape("frameworks=[..., 'tornado']")):
        bridges.run(main, frameworks=None)


def test_attaching_and_everyday_tornado_calls_raise_no_deprecation_warning() -> None:
    class Hello(tornado.web.RequestHandler):
        async def get(self) -> None:
            await gen.sleep(0)
            self.write("hi")

    @gen.coroutine
    def legacy() -> Any:
        value = yield IOLoop.current().run_in_executor(None, lambda: 1)
        return value

    async def main() -> tuple[bytes, int]:
        served = Served(tornado.web.Application([("/", Hello)]))
        IOLoop.current().add_callback(lambda: None)
        IOLoop.current().call_later(0, lambda: None)
        response = await tornado.httpclient.AsyncHTTPClient().fetch(served.url("/"))
        value = await legacy()
        await served.close()
        return response.body, value

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert run_tornado(main) == (b"hi", 1)


# -- start / stop / close -----------------------------------------------------------


def test_ioloop_stop_runs_the_hubs_stop_sequence_and_run_returns_none() -> None:
    reached: list[str] = []

    async def main() -> str:
        IOLoop.current().call_later(0.01, IOLoop.current().stop)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            reached.append("main cancelled")
            raise
        return "not stopped"

    assert run_tornado(main) is None
    assert reached == ["main cancelled"]


def test_trap_ioloop_start_inside_the_hub_fails_saying_what_to_do() -> None:
    async def main() -> None:
        IOLoop.current().start()

    with pytest.raises(btn.HubOwnsLoopError, match="Remove the start\\(\\) call"):
        run_tornado(main)


def test_trap_run_sync_inside_the_hub_refuses_before_scheduling_so_the_hub_keeps_running() -> None:
    ran: list[str] = []

    async def job() -> None:
        ran.append("job ran")

    async def main() -> str:
        with pytest.raises(btn.HubOwnsLoopError, match="run_sync"):
            IOLoop.current().run_sync(job)
        for _ in range(5):
            await asyncio.sleep(0)
        return "main finished"

    assert run_tornado(main) == "main finished"
    assert ran == []


def test_ioloop_close_inside_the_hub_releases_tornados_fds_but_keeps_the_loop_running() -> None:
    async def main() -> tuple[bool, dict[int, str]]:
        served = Served(tornado.web.Application([]))
        IOLoop.current().close()
        await asyncio.sleep(0)
        owners = bridges.current_hub().fd_owners()["readers"]
        served.server.stop()
        return asyncio.get_running_loop().is_closed(), owners

    closed, owners = run_tornado(main)
    assert not closed
    assert "tornado" not in owners.values()


# -- errors Tornado would only log ---------------------------------------------------


def test_an_exception_in_an_ioloop_callback_is_reported_once_and_the_hub_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports = Reports()
    boom = ValueError("boom")

    def broken() -> None:
        raise boom

    async def main() -> str:
        reports.install()
        IOLoop.current().add_callback(broken)
        await reports.first()
        await asyncio.sleep(0)
        return "still running"

    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        assert run_tornado(main) == "still running"
    assert reports.exceptions == [boom]
    assert "Exception in callback" in reports.messages[0]
    assert not [r for r in caplog.records if r.name == "tornado.application"]


def test_an_exception_in_a_periodic_callback_is_reported_each_time_it_happens() -> None:
    reports = Reports()

    async def main() -> None:
        reports.install()
        ticks: list[int] = []
        third = asyncio.Event()

        def tick() -> None:
            ticks.append(1)
            if len(ticks) == 3:
                third.set()
            raise KeyError(len(ticks))

        periodic = PeriodicCallback(tick, 1)
        periodic.start()
        await third.wait()
        periodic.stop()

    run_tornado(main)
    assert [type(exc) for exc in reports.exceptions[:3]] == [KeyError] * 3


def test_an_error_in_a_coroutine_spawned_with_spawn_callback_is_reported_once() -> None:
    reports = Reports()
    boom = RuntimeError("spawned")

    async def spawned() -> None:
        await asyncio.sleep(0)
        raise boom

    async def main() -> None:
        reports.install()
        IOLoop.current().spawn_callback(spawned)
        await reports.first()
        await asyncio.sleep(0.01)  # room for a second, wrong report of the same error

    run_tornado(main)
    assert reports.exceptions == [boom]


def test_callback_errors_outside_any_hub_are_logged_by_tornado_as_usual(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        IOLoop.current().add_callback(lambda: 1 / 0)
        await asyncio.sleep(0.01)

    async def nothing() -> None:
        pass

    run_tornado(nothing)  # a hub with Tornado came and went: Tornado logs as before
    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        asyncio.run(main())
    assert any("Exception in callback" in r.getMessage() for r in caplog.records)


# -- fds --------------------------------------------------------------------------


def test_tornados_fds_are_registered_in_the_hubs_fd_registry_as_tornados() -> None:
    async def main() -> tuple[str | None, str]:
        served = Served(tornado.web.Application([]))
        (fd,) = [s.fileno() for s in served.server._sockets.values()]
        owner = bridges.current_hub().fd_owners()["readers"].get(fd)
        try:
            bridges.current_hub().add_reader(fd, lambda: None, owner="someone else")
        except bridges.FdConflictError as exc:
            refusal = str(exc)
        else:
            refusal = "accepted"
        served.server.stop()
        return owner, refusal

    owner, refusal = run_tornado(main)
    assert owner == "tornado"
    assert "owned by 'tornado'" in refusal


# -- the hub's executor --------------------------------------------------------------


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_run_in_executor_and_run_on_executor_use_the_hubs_default_executor(
    loop_factory: str,
) -> None:
    class Worker:
        executor = btn.executor()

        @run_on_executor
        def where(self) -> str:
            return threading.current_thread().name

    async def main() -> tuple[str, str]:
        pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="hub-pool")
        asyncio.get_running_loop().set_default_executor(pool)
        via_ioloop = await IOLoop.current().run_in_executor(
            None, lambda: threading.current_thread().name
        )
        via_decorator = await Worker().where()
        return via_ioloop, via_decorator

    via_ioloop, via_decorator = run_tornado(main, loop_factory=loop_factory)
    assert via_ioloop.startswith("hub-pool")
    assert via_decorator.startswith("hub-pool")


def test_the_hub_executor_carries_the_same_exception_object() -> None:
    boom = OSError("disk")

    def fail() -> None:
        raise boom

    async def main() -> BaseException:
        with pytest.raises(OSError) as caught:
            await asyncio.wrap_future(btn.executor().submit(fail))
        return caught.value

    assert run_tornado(main) is boom


def test_work_cancelled_before_the_hub_executor_starts_it_never_runs() -> None:
    ran: list[str] = []
    release = threading.Event()

    async def main() -> bool:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        busy = btn.executor().submit(release.wait, 10)
        queued = btn.executor().submit(ran.append, "queued")
        cancelled = queued.cancel()
        release.set()
        await asyncio.wrap_future(busy)
        await asyncio.sleep(0.01)
        return cancelled

    assert run_tornado(main) is True
    assert ran == []


# -- clocks ------------------------------------------------------------------------


def test_ioloop_deadlines_use_ioloop_time_and_fire_in_order_with_loop_timers() -> None:
    async def main() -> tuple[list[str], bool]:
        loop = asyncio.get_running_loop()
        ioloop = IOLoop.current()
        fired: list[str] = []
        done = loop.create_future()
        loop.call_at(loop.time() + 0.01, fired.append, "asyncio 10ms")
        ioloop.call_at(ioloop.time() + 0.15, fired.append, "tornado 150ms")
        ioloop.add_timeout(ioloop.time() + 0.05, fired.append, "tornado 50ms")
        loop.call_at(loop.time() + 0.4, done.set_result, None)
        await done
        wall_clock = abs(ioloop.time() - time.time()) < 60
        return fired, wall_clock

    fired, wall_clock = run_tornado(main)
    assert fired == ["asyncio 10ms", "tornado 50ms", "tornado 150ms"]
    assert wall_clock


def test_gen_with_timeout_times_out_and_gen_sleep_returns_on_the_hub() -> None:
    async def main() -> str:
        import datetime

        never = asyncio.get_running_loop().create_future()
        try:
            await gen.with_timeout(datetime.timedelta(milliseconds=20), never)
        except gen.TimeoutError:
            outcome = "timed out"
        else:
            outcome = "finished"
        await gen.sleep(0.01)
        never.cancel()
        return outcome

    assert run_tornado(main) == "timed out"
