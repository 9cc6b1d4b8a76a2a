"""The cross-framework contract (docs/contract.md), row by row, for Twisted <-> asyncio.

Twisted -> asyncio is ``await bridges.awaitable(deferred)``; asyncio -> Twisted
is ``bt.deferred(awaitable)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
import threading
import traceback
from typing import Any

import pytest
from _reports import Reports
from _twisted_helpers import reactor, run_twisted
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

import bridges
from bridges import twisted as bt

pytestmark = pytest.mark.timeout(60)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def frame_names(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


# -- result -------------------------------------------------------------------------


def test_result_of_a_pending_deferred_is_the_same_object() -> None:
    payload = object()

    async def main() -> bool:
        d: Deferred[object] = Deferred()
        reactor().callLater(0.01, d.callback, payload)
        return await bridges.awaitable(d) is payload

    assert run_twisted(main)


def test_result_of_an_already_fired_deferred_is_the_same_object() -> None:
    payload = object()

    async def main() -> bool:
        return await bridges.awaitable(defer.succeed(payload)) is payload

    assert run_twisted(main)


def test_callbacks_added_to_an_awaited_deferred_still_get_its_result() -> None:
    payload = object()

    async def main() -> list[object]:
        d: Deferred[object] = Deferred()
        waiting = asyncio.ensure_future(bridges.awaitable(d))
        await asyncio.sleep(0)
        later: list[object] = []
        d.addCallback(later.append)
        d.callback(payload)
        assert await waiting is payload
        return later

    assert run_twisted(main) == [payload]


def test_a_fired_deferred_paused_on_another_is_awaited_until_that_one_fires() -> None:
    payload = object()

    async def main() -> bool:
        inner: Deferred[object] = Deferred()
        outer: Deferred[object] = Deferred()
        outer.addCallback(lambda _: inner)  # outer is called, then paused on inner
        outer.callback(None)
        reactor().callLater(0.01, inner.callback, payload)
        return await bridges.awaitable(outer) is payload

    assert run_twisted(main)


def test_trap_a_pending_deferred_is_awaitable_instead_of_task_got_bad_yield() -> None:
    async def main() -> str:
        d: Deferred[str] = Deferred()
        reactor().callLater(0.01, d.callback, "pending, then fired")
        return await bridges.awaitable(d)

    assert run_twisted(main) == "pending, then fired"


def test_the_deferred_keeps_its_result_for_callbacks_added_after_the_await() -> None:
    async def main() -> list[str]:
        d = defer.succeed("kept")
        await bridges.awaitable(d)
        seen: list[str] = []
        d.addCallback(seen.append)
        return seen

    assert run_twisted(main) == ["kept"]


def test_result_of_a_coroutine_run_as_a_deferred_is_the_same_object() -> None:
    payload = object()

    async def produce() -> object:
        await asyncio.sleep(0)
        return payload

    async def main() -> bool:
        return await bridges.awaitable(bt.deferred(produce())) is payload

    assert run_twisted(main)


def test_bt_deferred_of_a_deferred_is_that_deferred() -> None:
    async def main() -> bool:
        d: Deferred[None] = Deferred()
        return bt.deferred(d) is d

    assert run_twisted(main)


# -- exception ------------------------------------------------------------------------


def test_a_failure_arrives_as_the_same_exception_with_its_traceback_frames() -> None:
    raised: list[BaseException] = []

    def explode_in_callback(_: object) -> None:
        error = KeyError("from a callback")
        raised.append(error)
        raise error

    async def main() -> None:
        d: Deferred[None] = Deferred()
        d.addCallback(explode_in_callback)
        reactor().callLater(0, d.callback, None)
        await bridges.awaitable(d)

    with pytest.raises(KeyError) as caught:
        run_twisted(main)
    assert caught.value is raised[0]
    assert "explode_in_callback" in frame_names(caught.value)


def test_an_already_failed_deferred_is_the_same_exception_and_leaves_no_unhandled_error() -> None:
    reports = Reports()
    error = ValueError("already failed")

    async def main() -> bool:
        reports.install()
        try:
            await bridges.awaitable(defer.fail(error))
        except ValueError as exc:
            caught = exc
        gc.collect()
        await asyncio.sleep(0)
        return caught is error

    assert run_twisted(main)
    assert reports.contexts == []


def test_an_exception_of_a_coroutine_reaches_the_deferred_as_the_same_object_with_frames() -> None:
    async def fail_in_coroutine() -> None:
        await asyncio.sleep(0)
        raise LookupError("from asyncio")

    async def main() -> tuple[Failure, BaseException]:
        got: asyncio.Future[Failure] = asyncio.get_running_loop().create_future()
        d = bt.deferred(fail_in_coroutine())
        d.addErrback(got.set_result)
        with pytest.raises(LookupError) as direct:
            await bridges.awaitable(bt.deferred(fail_in_coroutine()))
        return await got, direct.value

    failure, direct = run_twisted(main)
    assert isinstance(failure.value, LookupError)
    assert "fail_in_coroutine" in frame_names(failure.value)
    assert "fail_in_coroutine" in [frame[0] for frame in failure.frames]
    assert "fail_in_coroutine" in frame_names(direct)


def test_inline_callbacks_catch_the_coroutines_exception_object() -> None:
    error = OSError("coroutine failed")

    async def failing() -> None:
        raise error

    @defer.inlineCallbacks
    def legacy() -> Any:
        try:
            yield bt.deferred(failing())
        except OSError as exc:
            return exc
        return None

    async def main() -> bool:
        return await bridges.awaitable(legacy()) is error

    assert run_twisted(main)


# -- cancel from the awaiting side ------------------------------------------------------


def test_cancelling_the_awaiting_task_runs_the_canceller_and_the_task_sees_its_own_cancel() -> None:
    reports = Reports()

    async def main() -> tuple[list[str], tuple[Any, ...], bool]:
        reports.install()
        cancelled: list[str] = []
        d: Deferred[None] = Deferred(lambda _: cancelled.append("canceller ran"))
        seen: list[BaseException] = []

        async def waiter() -> None:
            try:
                await bridges.awaitable(d)
            except asyncio.CancelledError as exc:
                seen.append(exc)
                raise

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        task.cancel("the awaiting side's own reason")
        await asyncio.gather(task, return_exceptions=True)
        gc.collect()
        await asyncio.sleep(0)
        return cancelled, seen[0].args, task.cancelled()

    cancelled, args, task_cancelled = run_twisted(main)
    assert cancelled == ["canceller ran"]
    assert args == ("the awaiting side's own reason",)
    assert task_cancelled
    assert reports.contexts == []


def test_a_canceller_that_fires_a_result_leaves_it_on_the_deferred_and_the_task_cancelled() -> None:
    reports = Reports()
    payload = object()

    async def main() -> tuple[bool, list[object]]:
        reports.install()
        d: Deferred[object] = Deferred(lambda d: d.callback(payload))
        task = asyncio.ensure_future(bridges.awaitable(d))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        later: list[object] = []
        d.addCallback(later.append)
        gc.collect()
        await asyncio.sleep(0)
        return task.cancelled(), later

    task_cancelled, later = run_twisted(main)
    assert task_cancelled
    assert later == [payload]
    assert reports.contexts == []


def test_a_canceller_that_fires_a_failure_leaves_no_unhandled_error() -> None:
    reports = Reports()

    async def main() -> bool:
        reports.install()
        d: Deferred[None] = Deferred(lambda d: d.errback(OSError("refused while cancelling")))
        task = asyncio.ensure_future(bridges.awaitable(d))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        del d
        gc.collect()
        await asyncio.sleep(0)
        return task.cancelled()

    assert run_twisted(main)
    assert reports.contexts == []


def test_cancelling_a_deferred_that_waits_on_another_cancels_the_inner_one() -> None:
    async def main() -> list[str]:
        cancelled: list[str] = []
        inner: Deferred[None] = Deferred(lambda _: cancelled.append("inner"))
        outer = defer.succeed(None)
        outer.addCallback(lambda _: inner)
        outer.addErrback(lambda f: f.trap(defer.CancelledError))
        task = asyncio.ensure_future(bridges.awaitable(outer))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return cancelled

    assert run_twisted(main) == ["inner"]


def test_twisted_side_d_cancel_cancels_the_task_and_errbacks_at_once() -> None:
    async def main() -> tuple[list[type[BaseException]], bool]:
        started = asyncio.Event()

        async def long_work() -> None:
            started.set()
            await asyncio.sleep(30)

        d = bt.deferred(long_work())
        failures: list[type[BaseException]] = []
        d.addErrback(lambda f: failures.append(f.type))
        await started.wait()
        d.cancel()
        errbacked_at_once = list(failures)
        tasks = bridges.current_hub().pending_tasks()
        await asyncio.gather(*tasks, return_exceptions=True)
        return errbacked_at_once, all(task.cancelled() for task in tasks)

    failures, cancelled = run_twisted(main)
    assert failures == [defer.CancelledError]
    assert cancelled


def test_trap_early_cancel_leaves_no_unhandled_error_twisted_12470() -> None:
    reports = Reports()
    ran: list[str] = []

    async def never_started() -> None:
        ran.append("ran")

    async def main() -> None:
        reports.install()
        d = bt.deferred(never_started())
        d.addErrback(lambda f: f.trap(defer.CancelledError))
        d.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        del d
        gc.collect()
        await asyncio.sleep(0)

    run_twisted(main)
    assert ran == []
    assert reports.contexts == []


def test_trap_add_timeout_gives_twisteds_timeout_error_twisted_9679() -> None:
    async def main() -> type[BaseException]:
        d = bt.deferred(asyncio.sleep(30))
        d.addTimeout(0.01, reactor())
        try:
            await bridges.awaitable(d)
        except defer.TimeoutError as exc:
            return type(exc)
        return type(None)

    assert run_twisted(main) is defer.TimeoutError


def test_an_exception_raised_after_the_deferred_was_cancelled_is_reported_not_lost() -> None:
    reports = Reports()
    error = RuntimeError("raised while being cancelled")

    async def refuses_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise error from None

    async def main() -> None:
        reports.install()
        d = bt.deferred(refuses_to_stop())
        d.addErrback(lambda f: f.trap(defer.CancelledError))
        await asyncio.sleep(0)
        d.cancel()
        await asyncio.sleep(0.01)

    run_twisted(main)
    assert reports.exceptions == [error]


# -- cancel from the native side ---------------------------------------------------------


def test_twisted_code_cancelling_the_deferred_reaches_the_awaiting_task_as_cancelled_error() -> (
    None
):
    async def main() -> bool:
        d: Deferred[None] = Deferred()
        task = asyncio.ensure_future(bridges.awaitable(d))
        reactor().callLater(0, d.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return task.cancelled()
        return False

    assert run_twisted(main)


def test_cancelling_the_task_behind_bt_deferred_errbacks_with_twisteds_cancelled_error() -> None:
    async def main() -> list[type[BaseException]]:
        d = bt.deferred(asyncio.sleep(30))
        failures: list[type[BaseException]] = []
        d.addErrback(lambda f: failures.append(f.type))
        await asyncio.sleep(0)
        for task in bridges.current_hub().pending_tasks():
            task.cancel()
        await asyncio.sleep(0.01)
        return failures

    assert run_twisted(main) == [defer.CancelledError]


# -- the coroutine is a real asyncio task ---------------------------------------------------


def test_trap_coroutines_run_as_real_tasks_not_twisteds_trampoline() -> None:
    async def inside() -> tuple[bool, str]:
        task = asyncio.current_task()
        await asyncio.sleep(0.01)
        return task is not None, "slept"

    async def main() -> tuple[bool, str]:
        return await bridges.awaitable(bt.deferred(inside()))

    assert run_twisted(main) == (True, "slept")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in 3.11")
def test_asyncio_timeout_works_inside_a_coroutine_run_as_a_deferred() -> None:
    async def inside() -> str:
        try:
            async with asyncio.timeout(0.01):  # type: ignore[attr-defined]
                await asyncio.sleep(30)
        except TimeoutError:
            return "timed out"
        return "not reached"

    async def main() -> str:
        return await bridges.awaitable(bt.deferred(inside()))

    assert run_twisted(main) == "timed out"


def test_inline_callbacks_code_can_yield_bt_deferred_of_a_coroutine() -> None:
    async def add_later(a: int, b: int) -> int:
        await asyncio.sleep(0.001)
        return a + b

    @defer.inlineCallbacks
    def legacy() -> Any:
        first = yield bt.deferred(add_later(1, 2))
        second = yield bt.deferred(add_later(first, 3))
        return second

    async def main() -> int:
        return await bridges.awaitable(legacy())

    assert run_twisted(main) == 6


# -- context ----------------------------------------------------------------------------------


def test_context_of_the_asyncio_caller_is_visible_in_twisted_code() -> None:
    @defer.inlineCallbacks
    def legacy() -> Any:
        yield defer.succeed(None)
        return request_id.get()

    async def main() -> str:
        request_id.set("set by asyncio")
        return await bridges.awaitable(legacy())

    assert run_twisted(main) == "set by asyncio"


def test_context_of_the_twisted_caller_is_visible_in_the_coroutine() -> None:
    async def read_it() -> str:
        await asyncio.sleep(0)
        return request_id.get()

    @defer.inlineCallbacks
    def legacy() -> Any:
        request_id.set("set by inlineCallbacks")
        value = yield bt.deferred(read_it())
        return value

    async def main() -> str:
        return await bridges.awaitable(legacy())

    assert run_twisted(main) == "set by inlineCallbacks"


# -- thread -----------------------------------------------------------------------------------


def test_results_from_twisteds_threads_are_delivered_on_the_hubs_thread() -> None:
    async def main() -> tuple[bool, bool]:
        from twisted.internet import threads

        hub_thread = threading.get_ident()
        callback_threads: list[int] = []
        d = threads.deferToThread(threading.get_ident)
        d.addCallback(lambda worker: callback_threads.append(threading.get_ident()) or worker)
        worker = await bridges.awaitable(d)
        return worker != hub_thread, callback_threads == [hub_thread]

    assert run_twisted(main) == (True, True)


# -- nothing lost ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_ten_thousand_concurrent_deferreds_and_coroutines_lose_nothing() -> None:
    count = 10_000

    async def main() -> tuple[list[int], list[int], int]:
        installed = reactor()
        pending: list[Deferred[int]] = []
        for i in range(count):
            d: Deferred[int] = Deferred()
            installed.callLater(0, d.callback, i)
            pending.append(d)
        awaited = await asyncio.gather(*(bridges.awaitable(d) for d in pending))

        async def echo(i: int) -> int:
            await asyncio.sleep(0)
            return i

        results = await bridges.awaitable(
            defer.gatherResults([bt.deferred(echo(i)) for i in range(count)])
        )
        await asyncio.sleep(0)
        return awaited, results, len(bridges.current_hub().pending_tasks())

    awaited, results, leftover = run_twisted(main)
    assert awaited == list(range(count))
    assert results == list(range(count))
    assert leftover == 0


def test_a_coroutine_failure_nobody_handled_is_reported_once() -> None:
    reports = Reports()
    error = ArithmeticError("nobody waits for me")

    async def failing() -> None:
        raise error

    async def main() -> None:
        reports.install()
        bt.deferred(failing())
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)

    run_twisted(main)
    assert reports.exceptions == [error]


def test_awaitable_of_a_deferred_outside_a_running_loop_says_where_to_await_it() -> None:
    with pytest.raises(bridges.HubNotRunningError, match=r"inside bridges\.run"):
        bridges.awaitable(defer.succeed(None))
