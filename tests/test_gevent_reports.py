"""gevent on the hub: which greenlet errors are reported, contexts, greenlets killed at stop.

The rule (DESIGN.md, *nothing lost*): an exception somebody receives is not
reported; one nobody receives is reported exactly once, through the loop's
exception handler.  A cancellation is never an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from typing import Any

import gevent
import gevent.pool
import pytest

import bridges
from bridges import gevent as bg

pytestmark = pytest.mark.timeout(30)

GEVENT = ["gevent"]
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class Boom(Exception):
    pass


def run(main: Any) -> Any:
    return bridges.run(main, frameworks=GEVENT)


def collect_reports() -> list[BaseException | None]:
    reports: list[BaseException | None] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _loop, context: reports.append(context.get("exception"))
    )
    return reports


def fails(error: BaseException) -> None:
    gevent.sleep(0)
    raise error


async def settle() -> None:
    for _ in range(5):
        gc.collect()
        await asyncio.sleep(0.001)


# -- received exceptions are not reported ----------------------------------------------


def test_an_exception_awaited_out_of_a_greenlet_is_not_reported() -> None:
    error = Boom("awaited")

    async def main() -> tuple[Any, list[Any]]:
        reports = collect_reports()
        with pytest.raises(Boom) as info:
            await bridges.awaitable(gevent.spawn(fails, error))
        await settle()
        return info.value, reports

    raised, reports = run(main)
    assert raised is error
    assert reports == [], f"an exception that asyncio code awaited was reported: {reports}"


def test_an_exception_a_greenlet_gets_by_joining_is_not_reported() -> None:
    error = Boom("joined")

    def joiner() -> BaseException | None:
        glet = gevent.spawn(fails, error)
        try:
            glet.get()
        except Boom as exc:
            return exc
        return None

    async def main() -> tuple[Any, list[Any]]:
        reports = collect_reports()
        got = await bridges.awaitable(gevent.spawn(joiner))
        await settle()
        return got, reports

    got, reports = run(main)
    assert got is error
    assert reports == [], f"an exception that greenlet.get() received was reported: {reports}"


def test_an_exception_of_a_greenlet_awaited_after_it_died_is_not_reported() -> None:
    error = Boom("awaited late")

    async def main() -> tuple[Any, list[Any]]:
        reports = collect_reports()
        glet = gevent.spawn(fails, error)
        await asyncio.sleep(0.01)
        assert glet.dead, "the greenlet should have died before it is awaited"
        with pytest.raises(Boom) as info:
            await bridges.awaitable(glet)
        del glet
        await settle()
        return info.value, reports

    raised, reports = run(main)
    assert raised is error
    assert reports == [], f"an exception awaited after the greenlet died was reported: {reports}"


def test_an_exception_of_greenlets_joined_after_they_died_is_not_reported() -> None:
    errors = [Boom(f"joined late {i}") for i in range(3)]

    def scenario() -> list[BaseException]:
        glets = [gevent.spawn(fails, error) for error in errors]
        gevent.sleep(0.01)
        assert all(g.dead for g in glets), "the greenlets should have died before joinall"
        gevent.joinall(glets)
        return [g.exception for g in glets]

    async def main() -> tuple[Any, list[Any]]:
        reports = collect_reports()
        got = await bridges.awaitable(gevent.spawn(scenario))
        await settle()
        return got, reports

    got, reports = run(main)
    assert got == errors
    assert reports == [], f"exceptions joinall received after the deaths were reported: {reports}"


# -- unreceived exceptions are reported once ---------------------------------------------


def test_an_exception_of_a_greenlet_nobody_keeps_is_reported_once_when_it_is_collected() -> None:
    error = Boom("nobody receives me")

    async def main() -> list[Any]:
        reports = collect_reports()
        gevent.spawn(fails, error)
        for _ in range(100):
            await settle()
            if reports:
                break
        seen_while_running = list(reports)
        await settle()
        return [seen_while_running, reports]

    seen_while_running, reports = run(main)
    assert seen_while_running == [error], "the error should be reported while the hub runs"
    assert reports == [error], f"the error should be reported once, got {reports}"


def test_an_exception_of_a_greenlet_kept_but_never_received_is_reported_at_stop() -> None:
    error = Boom("kept, never received")
    kept: list[Any] = []
    reports: list[Any] = []

    async def main() -> None:
        kept.append(gevent.spawn(fails, error))
        await settle()
        assert reports == [], "a greenlet still referenced is reported when the hub stops"

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: reports.append(context.get("exception")))
    bridges.run(main, frameworks=GEVENT, loop_factory=lambda: loop)
    assert reports == [error], f"the unreceived error should be reported once at stop: {reports}"


def test_an_exception_of_a_pool_greenlet_nobody_waits_on_is_reported() -> None:
    error = Boom("in a pool")

    async def main() -> list[Any]:
        reports = collect_reports()
        pool = gevent.pool.Pool(2)
        pool.spawn(fails, error)
        for _ in range(100):
            await settle()
            if reports:
                break
        return reports

    reports = run(main)
    assert reports == [error], (
        f"a pool's own link receives nothing, so the error should be reported: {reports}"
    )


def test_an_exception_of_a_greenlet_with_only_a_link_value_is_reported() -> None:
    error = Boom("link_value receives successes only")

    async def main() -> list[Any]:
        reports = collect_reports()
        gevent.spawn(fails, error).link_value(lambda _g: None)
        for _ in range(100):
            await settle()
            if reports:
                break
        return reports

    assert run(main) == [error]


def test_the_linked_callables_of_a_greenlet_are_still_visible() -> None:
    # bridges.gevent reads the compiled Greenlet's links through gc.get_referents
    # (checked on gevent 26.7-26.9): this fails if gevent changes that layout.
    from bridges.gevent import _links_of

    def link(_g: Any) -> None:
        pass

    async def main() -> Any:
        glet = gevent.spawn(lambda: None)
        glet.rawlink(link)
        links = list(_links_of(glet) or ())
        await bridges.awaitable(glet)
        return links

    links = run(main)
    assert link in links, f"the greenlet's links were not found: {links}"


# -- cancellation is not an error ---------------------------------------------------


def test_a_greenlet_whose_bg_wait_was_cancelled_is_not_reported() -> None:
    async def main() -> tuple[list[Any], Any]:
        reports = collect_reports()
        pending = asyncio.get_running_loop().create_future()
        glet = gevent.spawn(bg.wait, pending)
        await asyncio.sleep(0.01)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bridges.awaitable(glet)
        await settle()
        return reports, glet.exception

    reports, exception = run(main)
    assert isinstance(exception, asyncio.CancelledError)
    assert reports == [], f"a cancellation was reported as an error: {reports}"


def test_greenlets_blocked_on_hub_tasks_at_stop_are_not_reported() -> None:
    reports: list[Any] = []
    ended: list[Any] = []

    async def forever() -> None:
        await asyncio.sleep(100)

    def waits_on_a_hub_task() -> None:
        try:
            bg.wait(forever())
        except BaseException as exc:
            ended.append(type(exc))
            raise

    async def main() -> None:
        for _ in range(3):
            gevent.spawn(waits_on_a_hub_task)
        await asyncio.sleep(0.01)

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    bridges.run(main, frameworks=GEVENT, loop_factory=lambda: loop)
    assert len(ended) == 3, f"the three greenlets should have ended at stop: {ended}"
    assert reports == [], f"the stop reported errors: {reports}"


# -- context -----------------------------------------------------------------------------


def test_a_greenlet_spawned_from_a_coroutine_sees_the_coroutines_contextvars() -> None:
    async def main() -> str:
        request_id.set("from the coroutine")
        return await bridges.awaitable(gevent.spawn(request_id.get))

    assert run(main) == "from the coroutine"


def test_a_greenlet_spawned_from_a_greenlet_sees_a_copy_of_its_contextvars() -> None:
    def child() -> str:
        seen = request_id.get()
        request_id.set("changed by the child")
        return seen

    def parent() -> tuple[str, str]:
        request_id.set("from the parent greenlet")
        seen = gevent.spawn(child).get()
        return seen, request_id.get()

    async def main() -> Any:
        return await bridges.awaitable(gevent.spawn(parent))

    assert run(main) == ("from the parent greenlet", "from the parent greenlet")


def test_a_greenlet_spawned_later_sees_the_context_of_the_code_that_spawned_it() -> None:
    async def main() -> str:
        request_id.set("before spawn_later")
        glet = gevent.spawn_later(0.001, request_id.get)
        request_id.set("after spawn_later")
        return await bridges.awaitable(glet)

    assert run(main) == "before spawn_later"


# -- stop ------------------------------------------------------------------------------


def test_stop_kills_greenlets_spawned_later_and_not_yet_started() -> None:
    ran: list[str] = []

    async def main() -> Any:
        return gevent.spawn_later(100, ran.append, "ran")

    glet = run(main)
    assert glet.dead, "a greenlet scheduled with spawn_later should be killed at stop"
    assert ran == []


def test_the_record_of_started_greenlets_does_not_grow_with_greenlets_that_ended() -> None:
    async def main() -> int:
        for _ in range(5000):
            await bridges.awaitable(gevent.spawn(lambda: None))
        return len(bg.get_hub().loop._started)

    remembered = run(main)
    assert remembered <= 2048, f"{remembered} ended greenlets are still remembered"


def test_an_error_raised_by_a_greenlet_while_the_stop_kills_it_is_reported_once() -> None:
    error = Boom("raised in finally at stop")
    reports: list[Any] = []

    def cleanup_fails() -> None:
        try:
            gevent.sleep(100)
        finally:
            raise error

    async def main() -> None:
        gevent.spawn(cleanup_fails)
        await asyncio.sleep(0.01)

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: reports.append(context.get("exception")))
    bridges.run(main, frameworks=GEVENT, loop_factory=lambda: loop)
    assert reports == [error], f"the error should be reported once: {reports}"
