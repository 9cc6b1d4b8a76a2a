"""Timed calls on the hub's reactor keep Twisted's promises (one loop callback per call)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _reports import Reports
from _twisted_helpers import LOOPS, reactor, run_twisted

import bridges

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("loop_factory", LOOPS)]


def test_zero_delay_calls_run_in_the_order_they_were_made(loop_factory: str) -> None:
    async def main() -> list[int]:
        order: list[int] = []
        done = asyncio.get_running_loop().create_future()
        for i in range(100):
            reactor().callLater(0, order.append, i)
        reactor().callLater(0, done.set_result, None)
        await done
        return order

    assert run_twisted(main, loop_factory=loop_factory) == list(range(100))


def test_a_due_timed_call_runs_before_a_zero_delay_call_made_after_its_time(
    loop_factory: str,
) -> None:
    async def main() -> list[str]:
        order: list[str] = []
        done = asyncio.get_running_loop().create_future()

        def block_then_schedule() -> None:
            installed = reactor()
            installed.callLater(0.01, order.append, "timed, due first")
            time.sleep(0.03)  # blocks the loop: the timed call is due but not yet run
            installed.callLater(0, order.append, "zero delay, made later")
            installed.callLater(0.02, done.set_result, None)

        reactor().callLater(0, block_then_schedule)
        await done
        return order

    assert run_twisted(main, loop_factory=loop_factory) == [
        "timed, due first",
        "zero delay, made later",
    ]


def test_timed_calls_run_in_time_order_and_never_early(loop_factory: str) -> None:
    async def main() -> tuple[list[float], list[bool]]:
        installed = reactor()
        order: list[float] = []
        on_time: list[bool] = []
        done = asyncio.get_running_loop().create_future()
        calls = []

        def record(delay: float) -> None:
            order.append(delay)
            call = calls[len(order) - 1]
            on_time.append(installed.seconds() >= call.getTime())

        for delay in (0.03, 0.01, 0.02, 0.005):
            calls.append(installed.callLater(delay, record, delay))
        calls.sort(key=lambda call: call.getTime())
        installed.callLater(0.05, done.set_result, None)
        await done
        return order, on_time

    order, on_time = run_twisted(main, loop_factory=loop_factory)
    assert order == [0.005, 0.01, 0.02, 0.03]
    assert on_time == [True] * 4


def test_cancel_reset_and_delay_of_a_delayed_call_work(loop_factory: str) -> None:
    async def main() -> tuple[list[str], list[str], int]:
        installed = reactor()
        order: list[str] = []
        done = asyncio.get_running_loop().create_future()
        cancelled = installed.callLater(0.01, order.append, "cancelled")
        sooner = installed.callLater(10, order.append, "reset sooner")
        later = installed.callLater(0.005, order.append, "reset later")
        delayed = installed.callLater(0.001, order.append, "delayed")
        cancelled.cancel()
        sooner.reset(0.01)
        later.reset(0.03)
        delayed.delay(0.019)
        pending = sorted(str(call.func.__self__ is order) for call in installed.getDelayedCalls())
        installed.callLater(0.05, done.set_result, None)
        await done
        return order, pending, len(installed.getDelayedCalls())

    order, pending, left = run_twisted(main, loop_factory=loop_factory)
    assert order == ["reset sooner", "delayed", "reset later"]
    assert pending == ["True", "True", "True"]
    assert left == 0


def test_call_from_thread_runs_on_the_loop_after_one_more_pass(loop_factory: str) -> None:
    async def main() -> list[str]:
        import threading

        order: list[str] = []
        done = asyncio.get_running_loop().create_future()

        def from_thread() -> None:
            reactor().callFromThread(order.append, "from thread")
            reactor().callFromThread(done.set_result, None)

        thread = threading.Thread(target=from_thread)
        thread.start()
        await done
        thread.join()
        return order

    assert run_twisted(main, loop_factory=loop_factory) == ["from thread"]


def test_a_looping_call_ticks_at_its_interval_never_early(loop_factory: str) -> None:
    async def main() -> list[bool]:
        from twisted.internet import task

        installed = reactor()
        start = installed.seconds()
        ticks: list[float] = []

        def tick() -> None:
            ticks.append(installed.seconds())
            if len(ticks) == 3:
                looping.stop()

        looping = task.LoopingCall(tick)
        looping.clock = installed
        await bridges.awaitable(looping.start(0.01, now=False))
        return [at >= start + 0.01 * (i + 1) for i, at in enumerate(ticks)]

    assert run_twisted(main, loop_factory=loop_factory) == [True, True, True]


def test_a_call_cancelled_by_an_earlier_due_call_does_not_run_and_reports_nothing(
    loop_factory: str,
) -> None:
    reports = Reports()

    async def main() -> list[str]:
        reports.install()
        order: list[str] = []
        done = asyncio.get_running_loop().create_future()

        def block_then_schedule() -> None:
            installed = reactor()
            later: list[Any] = []
            installed.callLater(0.001, lambda: (order.append("earlier"), later[0].cancel()))
            time.sleep(0.01)  # the timed call is due; the zero-delay call below runs it first
            later.append(installed.callLater(0, order.append, "cancelled"))
            installed.callLater(0.02, done.set_result, None)

        reactor().callLater(0, block_then_schedule)
        await done
        return order

    assert run_twisted(main, loop_factory=loop_factory) == ["earlier"]
    assert reports.exceptions == []


def test_a_call_delayed_by_an_earlier_due_call_waits_for_its_new_time(loop_factory: str) -> None:
    async def main() -> tuple[list[str], bool]:
        order: list[str] = []
        on_time: list[bool] = []
        done = asyncio.get_running_loop().create_future()

        def block_then_schedule() -> None:
            installed = reactor()
            later: list[Any] = []
            installed.callLater(0.001, lambda: (order.append("earlier"), later[0].delay(0.02)))
            time.sleep(0.01)

            def delayed() -> None:
                order.append("delayed")
                on_time.append(installed.seconds() >= later[0].getTime())
                done.set_result(None)

            later.append(installed.callLater(0, delayed))

        reactor().callLater(0, block_then_schedule)
        await done
        return order, on_time == [True]

    assert run_twisted(main, loop_factory=loop_factory) == (["earlier", "delayed"], True)
