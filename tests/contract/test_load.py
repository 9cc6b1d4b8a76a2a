"""Load: 10,000 concurrent calls over every ordered pair of flavors, nothing lost, nothing leaked.

Every result and exception is checked against the object the callee produced;
after the hub stops nothing is left behind: no task, no live greenlet, no
Twisted delayed call, no extra fd, no extra thread, and no exception reported
twice.  How long it took is printed, never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections import Counter
from typing import Any

import pytest

import bridges

from .flavors import Flavor, Trace
from .harness import (
    ContractError,
    Marker,
    Reports,
    available_flavors,
    eventually,
    frameworks_of,
    run_on_hub,
    settle,
)

CALLS = 10_000
FAILING_KINDS = (7, 8)
CANCELLED_KIND = 9
"""Of every ten calls, seven resolve, two fail and one is cancelled by its caller."""


def _workload(flavors: list[Flavor], count: int, figures: dict[str, Any]) -> Any:
    pairs = [(caller, callee) for caller in flavors for callee in flavors]

    async def scenario(reports: Reports) -> None:
        started = time.perf_counter()
        calls = []
        cancelled: list[tuple[str, Flavor, Any, Trace]] = []
        for index in range(count):
            caller, callee = pairs[index % len(pairs)]
            trace = Trace()
            label = f"call {index} ({caller.name}->{callee.name})"
            expected: Any
            kind = index % 10
            # A concurrent.futures caller holds a worker thread while it waits: pending calls
            # would starve its pool, so it gets a result instead of a cancellation here.
            if kind == CANCELLED_KIND and caller.caller_thread_is_hub:

                def make(callee: Flavor = callee, t: Trace = trace) -> Any:
                    return callee.pending(t)

                handle = caller.call(trace, make)
                cancelled.append((label, caller, handle, trace))
                continue
            if kind in FAILING_KINDS:
                expected = ContractError(f"call {index}")

                def make(callee: Flavor = callee, exc: Any = expected, t: Trace = trace) -> Any:
                    return callee.failing(exc, t)
            else:
                expected = Marker(f"call {index}")

                def make(callee: Flavor = callee, value: Any = expected, t: Trace = trace) -> Any:
                    return callee.resolving(value, t)

            outcome = settle(caller.outcome(caller.call(trace, make)), label, 120)
            calls.append((label, expected, outcome))
        waiting = await eventually(
            lambda: all(t.started and c.can_cancel_call(t) for _, c, _, t in cancelled), 60
        )
        idle = [label for label, c, _, t in cancelled if not (t.started and c.can_cancel_call(t))]
        assert waiting, f"some of the calls to cancel never started waiting: {idle[:5]}"
        for _, caller, handle, trace in cancelled:
            caller.cancel_call(handle, trace)
        cancel_outcomes = [settle(c.outcome(h), label, 120) for label, c, h, _ in cancelled]
        outcomes = await asyncio.gather(*(outcome for _, _, outcome in calls))
        cancel_results = await asyncio.gather(*cancel_outcomes)
        figures["elapsed"] = time.perf_counter() - started
        wrong = [
            f"{label} expected {expected!r}, got {kind}: {got!r}"
            for (label, expected, _), (kind, got) in zip(calls, outcomes)
            if got is not expected
        ]
        wrong += [
            f"{label} was cancelled by its caller but ended with {kind}: {got!r}"
            for (label, _, _, _), (kind, got) in zip(cancelled, cancel_results)
            if kind != "cancelled"
        ]
        assert await eventually(lambda: all(t.callee_cancelled for *_, t in cancelled)), (
            "cancelled calls whose primitive never saw its native cancellation: "
            f"{[label for label, *_, t in cancelled if not t.callee_cancelled][:5]}"
        )
        assert not wrong, (
            f"of {count} concurrent calls, {len(wrong)} did not end with their own result, "
            f"exception or cancellation, e.g. {wrong[:3]}"
        )
        figures["counts"] = (len(calls), len(cancelled))
        hub = bridges.current_hub()
        current = asyncio.current_task()
        assert await eventually(
            lambda: (
                not hub.pending_tasks()
                and not [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            )
        ), (
            "every call finished, yet tasks are still pending: "
            f"{[t for t in asyncio.all_tasks() if t is not current][:5]}"
        )
        if "twisted" in hub.frameworks:
            from bridges import twisted as bt

            delayed = bt.get_reactor().getDelayedCalls()
            assert not delayed, f"every call finished, yet Twisted has delayed calls: {delayed}"
        awaited = {id(expected) for _, expected, _ in calls if isinstance(expected, Exception)}
        figures["awaited_exceptions"] = awaited

    return scenario


def _fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _live_greenlets() -> list[Any]:
    try:
        from gevent import Greenlet
    except ImportError:
        return []
    gc.collect()
    return [obj for obj in gc.get_objects() if isinstance(obj, Greenlet) and not obj.dead]


@pytest.mark.timeout(240)
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds through /proc")
def test_ten_thousand_mixed_calls_lose_nothing_and_leak_nothing() -> None:
    flavors = available_flavors()
    frameworks = frameworks_of(*flavors)
    # A small run first, so that what is made once per process (the worker pools, the
    # reactor's pipes, gevent's hub) exists before the counting starts.
    run_on_hub(_workload(flavors, len(flavors) ** 2, {}), frameworks)
    gc.collect()
    fds_before = _fds()
    threads_before = set(threading.enumerate())
    figures: dict[str, Any] = {}

    _, reports = run_on_hub(_workload(flavors, CALLS, figures), frameworks)

    print(
        f"\n{CALLS} concurrent calls over {len(flavors) ** 2} ordered pairs of "
        f"{[f.name for f in flavors]} settled in {figures['elapsed']:.2f}s "
        f"({CALLS / figures['elapsed']:,.0f} calls/s); {figures['counts'][0]} resolved or "
        f"failed and {figures['counts'][1]} were cancelled, every outcome checked"
    )
    counts = Counter(id(exc) for exc in reports.exceptions if exc is not None)
    twice = [exc for exc in reports.exceptions if exc is not None and counts[id(exc)] > 1]
    assert not twice, f"exceptions were reported more than once: {twice[:5]}"
    greenlets = _live_greenlets()
    assert not greenlets, f"greenlets are still alive after the hub stopped: {greenlets[:5]}"
    leaked_fds = _fds() - fds_before
    assert not leaked_fds, (
        f"{len(leaked_fds)} file descriptors opened during the run are still open after "
        f"the hub stopped: {sorted(leaked_fds)[:10]}"
    )
    # The suite's own worker pools (the concurrent.futures flavor) grow on demand and are
    # the suite's, not the hub's.
    leaked_threads = [
        thread
        for thread in threading.enumerate()
        if thread not in threads_before and not thread.name.startswith("contract-")
    ]
    assert not leaked_threads, (
        f"threads started during the run are still alive after the hub stopped: {leaked_threads}"
    )


@pytest.mark.timeout(240)
def test_ten_thousand_mixed_calls_report_no_awaited_exception() -> None:
    flavors = available_flavors()
    figures: dict[str, Any] = {}
    _, reports = run_on_hub(_workload(flavors, CALLS, figures), frameworks_of(*flavors))
    reported = [exc for exc in reports.exceptions if id(exc) in figures["awaited_exceptions"]]
    assert not reported, (
        f"{len(reported)} exceptions that were awaited and received were also reported as "
        f"unhandled: {reports.describe()[:500]}"
    )
    assert not reports.contexts, f"the error sink received: {reports.describe()[:500]}"
