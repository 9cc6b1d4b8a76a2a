"""Portals: what a greenlet per asyncio task costs, and what blocking calls from tasks cost.

Rows (each for gevent and for eventlet, on the stdlib loop and on uvloop,
interleaved, median ratio of 5 repetitions with min-max; µs of this
thread's CPU per operation):

* **plain await round trip** in a task (a future resolved by ``call_soon``)
  on a gevent (eventlet) hub with portals on, against the same hub with
  ``portals=False``.  Target: at most 1.05x.
* **green-blocking call from a portal-task** (``Event.wait`` set by a
  greenlet / greenthread; ``gevent.sleep(0)`` / ``eventlet.sleep(0)``),
  against the same call made from a greenlet (greenthread) *plus* one
  asyncio task wake-up (the plain round trip above): a task's wake-up can
  never cost less than that sum.  Target: at most 1.2x.
* **bg.wait(coro) / be.wait(coro) from a portal-task**, against greenback's
  ``await_`` on the same coroutine (one doing ``asyncio.sleep(0)``, one
  that never suspends).  Target: at most 1.0x.  Needs ``pip install
  greenback`` (the ``bench`` extra).

Run: ``python benchmarks/bench_portals.py [--quick] [--report PATH] [--only gevent|eventlet]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, Callable, Sequence

import eventlet
import eventlet.event
import eventlet.greenthread
import gevent
import gevent.event

import bridges
from bridges import eventlet as be
from bridges import gevent as bg

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import Row, add_report_options, compare, emit

REPS = 5
ROUND_TRIPS = 20_000
BLOCKING = 10_000
LOOPS: dict[str, Any] = {"stdlib loop": None, "uvloop": "uvloop"}


def on_hub(
    body: Callable[[], Any], loop_factory: Any, *, portals: bool = True, framework: str = "gevent"
) -> float:
    """Run the coroutine function ``body`` as main of a fresh gevent (eventlet) hub; its figure."""
    return bridges.run(body, frameworks=[framework], loop_factory=loop_factory, portals=portals)  # type: ignore[no-any-return]


def per_op(start: float, count: int) -> float:
    return (time.thread_time() - start) / count * 1e6


# -- plain asyncio await round trip in a task ---------------------------------


async def future_round_trips() -> float:
    async def in_task() -> float:
        loop = asyncio.get_running_loop()
        start = time.thread_time()
        for _ in range(ROUND_TRIPS):
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            await future
        return per_op(start, ROUND_TRIPS)

    return await asyncio.get_running_loop().create_task(in_task())


# -- green-blocking calls ----------------------------------------------------------


class _EventletEvent(eventlet.event.Event):  # type: ignore[misc]
    """eventlet's Event under gevent's names (set/clear), for one ping-pong for both."""

    set = eventlet.event.Event.send
    clear = eventlet.event.Event.reset


def ping_pong(
    make_event: Callable[[], Any], spawn: Callable[..., Any], join: Callable[[Any], Any]
) -> float:
    """``Event.wait`` answered by a partner green thread, from whatever runs this."""
    request, reply = make_event(), make_event()

    def partner() -> None:
        for _ in range(BLOCKING):
            request.wait()
            request.clear()
            reply.set()

    helper = spawn(partner)
    start = time.thread_time()
    for _ in range(BLOCKING):
        request.set()
        reply.wait()
        reply.clear()
    figure = per_op(start, BLOCKING)
    join(helper)
    return figure


def event_ping_pong() -> float:
    return ping_pong(gevent.event.Event, gevent.spawn, gevent.Greenlet.join)


def eventlet_event_ping_pong() -> float:
    return ping_pong(_EventletEvent, eventlet.spawn, eventlet.greenthread.GreenThread.wait)


def sleeps_zero_of(sleep: Callable[[float], Any]) -> float:
    start = time.thread_time()
    for _ in range(BLOCKING):
        sleep(0)
    return per_op(start, BLOCKING)


def sleep_zero() -> float:
    return sleeps_zero_of(gevent.sleep)


def eventlet_sleep_zero() -> float:
    return sleeps_zero_of(eventlet.sleep)


def from_portal_task(green: Callable[[], float]) -> Callable[[], Any]:
    async def main() -> float:
        async def in_task() -> float:
            return green()

        return await asyncio.get_running_loop().create_task(in_task())

    return main


def from_greenlet_plus_wakeup(
    green: Callable[[], float], spawn: Callable[..., Any] = gevent.spawn
) -> Callable[[], Any]:
    async def main() -> float:
        in_greenlet = await bridges.awaitable(spawn(green))
        return in_greenlet + await future_round_trips()  # type: ignore[no-any-return]

    return main


# -- bg.wait(coro) vs greenback.await_ ------------------------------------------------


async def sleeps_zero() -> None:
    await asyncio.sleep(0)


async def returns_at_once() -> None:
    return None


def inline_waits(
    coroutine: Callable[[], Any], wait: Callable[[Any], Any] = bg.wait
) -> Callable[[], Any]:
    async def main() -> float:
        async def in_task() -> float:
            start = time.thread_time()
            for _ in range(ROUND_TRIPS):
                wait(coroutine())
            return per_op(start, ROUND_TRIPS)

        return await asyncio.get_running_loop().create_task(in_task())

    return main


def greenback_awaits(coroutine: Callable[[], Any]) -> Callable[[], Any]:
    import greenback

    async def main() -> float:
        async def in_task() -> float:
            await greenback.ensure_portal()
            start = time.thread_time()
            for _ in range(ROUND_TRIPS):
                greenback.await_(coroutine())
            return per_op(start, ROUND_TRIPS)

        return await asyncio.get_running_loop().create_task(in_task())

    return main


# -- the table ---------------------------------------------------------------------------


def row(
    case: str,
    baseline_name: str,
    baseline: Callable[[], float],
    ours: Callable[[], float],
    max_cost: float,
) -> Row:
    baseline()
    ours()  # warm-up
    result = compare(
        benchmark="portals",
        case=case,
        unit="µs",
        higher_is_better=False,
        baseline_name=baseline_name,
        baseline=baseline,
        ours=ours,
        repetitions=REPS,
        target=f"<= {max_cost:g}x {baseline_name}",
        target_ratio=1 / max_cost,
    )
    print(
        f"  {case:<58} {result.ours:7.2f} µs vs {result.baseline:7.2f} µs  cost "
        f"{1 / result.ratio:5.2f}x (min {1 / result.ratio_max:.2f}, max {1 / result.ratio_min:.2f})"
        f"  [target <= {max_cost:g}x]",
        flush=True,
    )
    return result


class Green:
    """One green framework's side of the rows: its blocking calls and its ``wait``."""

    def __init__(
        self,
        name: str,
        spawn: Callable[..., Any],
        wait: Callable[[Any], Any],
        blocking: tuple[tuple[str, Callable[[], float]], ...],
        thread: str,
        prefix: str,
    ) -> None:
        self.name = name
        self.spawn = spawn
        self.wait = wait
        self.blocking = blocking
        self.thread = thread
        self.prefix = prefix


GREENS = {
    "gevent": Green(
        "gevent",
        gevent.spawn,
        bg.wait,
        (("Event.wait set by a greenlet", event_ping_pong), ("gevent.sleep(0)", sleep_zero)),
        "greenlet",
        "bg",
    ),
    "eventlet": Green(
        "eventlet",
        eventlet.spawn,
        be.wait,
        (
            ("eventlet Event.wait set by a greenthread", eventlet_event_ping_pong),
            ("eventlet.sleep(0)", eventlet_sleep_zero),
        ),
        "greenthread",
        "be",
    ),
}


def bench(loop_name: str, loop_factory: Any, green: Green) -> list[Row]:
    print(f"{green.name}, {loop_name} (cost = ours / baseline; lower is better)")
    framework = green.name
    # gevent's rows keep their names; eventlet's say which framework they are for.
    hub = "" if framework == "gevent" else f"{framework} hub, "

    def hub_run(body: Callable[[], Any], portals: bool = True) -> float:
        return on_hub(body, loop_factory, portals=portals, framework=framework)

    rows = [
        row(
            f"plain await round trip in a task, {hub}portals on [{loop_name}]",
            "the same hub with portals=False",
            lambda: hub_run(future_round_trips, portals=False),
            lambda: hub_run(future_round_trips),
            1.05,
        )
    ]
    for name, blocking in green.blocking:
        rows.append(
            row(
                f"{name} from a portal-task [{loop_name}]",
                f"the same from a {green.thread} + one task wake-up",
                lambda blocking=blocking: hub_run(from_greenlet_plus_wakeup(blocking, green.spawn)),
                lambda blocking=blocking: hub_run(from_portal_task(blocking)),
                1.2,
            )
        )
    try:
        import greenback  # noqa: F401
    except ImportError:
        print("  (greenback is not installed: pip install greenback, or the bench extra)")
        return rows
    for name, coroutine in (
        ("asyncio.sleep(0)", sleeps_zero),
        ("never suspends", returns_at_once),
    ):
        rows.append(
            row(
                f"{green.prefix}.wait(coro: {name}) from a portal-task [{loop_name}]",
                "greenback.await_ on the same coroutine",
                lambda coroutine=coroutine: hub_run(greenback_awaits(coroutine), portals=False),
                lambda coroutine=coroutine: hub_run(inline_waits(coroutine, green.wait)),
                1.0,
            )
        )
    return rows


def main(argv: Sequence[str]) -> None:
    global REPS
    parser = argparse.ArgumentParser(description=__doc__)
    add_report_options(parser)
    parser.add_argument("--only", choices=sorted(GREENS), help="one framework's rows")
    args = parser.parse_args(argv)
    only = args.only
    if args.quick:
        REPS = 3
    rows: list[Row] = []
    for green in GREENS.values():
        if only is not None and green.name != only:
            continue
        for loop_name, loop_factory in LOOPS.items():
            if loop_factory == "uvloop":
                try:
                    import uvloop  # noqa: F401
                except ImportError:
                    print("(uvloop is not installed: skipped)")
                    continue
            rows += bench(loop_name, loop_factory, green)
    emit(rows, args.report)


if __name__ == "__main__":
    main(sys.argv[1:])
