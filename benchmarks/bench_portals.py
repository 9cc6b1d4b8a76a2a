"""Portals: what a greenlet per asyncio task costs, and what blocking calls from tasks cost.

Rows (each on the stdlib loop and on uvloop, interleaved, median ratio of 5
repetitions with min-max; µs of this thread's CPU per operation):

* **plain await round trip** in a task (a future resolved by ``call_soon``)
  on a gevent hub with portals on, against the same hub with
  ``portals=False``.  Target: at most 1.05x.
* **gevent-blocking call from a portal-task** (``Event.wait`` set by a
  greenlet; ``gevent.sleep(0)``), against the same call made from a
  greenlet *plus* one asyncio task wake-up (the plain round trip above):
  a task's wake-up can never cost less than that sum.  Target: at most 1.2x.
* **bg.wait(coro) from a portal-task**, against greenback's ``await_`` on
  the same coroutine (one doing ``asyncio.sleep(0)``, one that never
  suspends).  Target: at most 1.0x.  Needs ``pip install greenback``
  (the ``bench`` extra).

Run: ``python benchmarks/bench_portals.py [--quick] [--report PATH]``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Callable, Sequence

import gevent
import gevent.event

import bridges
from bridges import gevent as bg

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _harness import Row, compare, emit, parse_args

REPS = 5
ROUND_TRIPS = 20_000
BLOCKING = 10_000
LOOPS: dict[str, Any] = {"stdlib loop": None, "uvloop": "uvloop"}


def on_hub(body: Callable[[], Any], loop_factory: Any, *, portals: bool = True) -> float:
    """Run the coroutine function ``body`` as main of a fresh gevent hub; its figure."""
    return bridges.run(body, frameworks=["gevent"], loop_factory=loop_factory, portals=portals)  # type: ignore[no-any-return]


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


# -- gevent-blocking calls ----------------------------------------------------------


def event_ping_pong() -> float:
    """``Event.wait`` answered by a partner greenlet, from whatever runs this."""
    request, reply = gevent.event.Event(), gevent.event.Event()

    def partner() -> None:
        for _ in range(BLOCKING):
            request.wait()
            request.clear()
            reply.set()

    helper = gevent.spawn(partner)
    start = time.thread_time()
    for _ in range(BLOCKING):
        request.set()
        reply.wait()
        reply.clear()
    figure = per_op(start, BLOCKING)
    helper.join()
    return figure


def sleep_zero() -> float:
    start = time.thread_time()
    for _ in range(BLOCKING):
        gevent.sleep(0)
    return per_op(start, BLOCKING)


def from_portal_task(green: Callable[[], float]) -> Callable[[], Any]:
    async def main() -> float:
        async def in_task() -> float:
            return green()

        return await asyncio.get_running_loop().create_task(in_task())

    return main


def from_greenlet_plus_wakeup(green: Callable[[], float]) -> Callable[[], Any]:
    async def main() -> float:
        in_greenlet = await bridges.awaitable(gevent.spawn(green))
        return in_greenlet + await future_round_trips()  # type: ignore[no-any-return]

    return main


# -- bg.wait(coro) vs greenback.await_ ------------------------------------------------


async def sleeps_zero() -> None:
    await asyncio.sleep(0)


async def returns_at_once() -> None:
    return None


def inline_waits(coroutine: Callable[[], Any]) -> Callable[[], Any]:
    async def main() -> float:
        async def in_task() -> float:
            start = time.thread_time()
            for _ in range(ROUND_TRIPS):
                bg.wait(coroutine())
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


def bench(loop_name: str, loop_factory: Any) -> list[Row]:
    print(f"{loop_name} (cost = ours / baseline; lower is better)")
    rows = [
        row(
            f"plain await round trip in a task, portals on [{loop_name}]",
            "the same hub with portals=False",
            lambda: on_hub(future_round_trips, loop_factory, portals=False),
            lambda: on_hub(future_round_trips, loop_factory),
            1.05,
        )
    ]
    for name, green in (
        ("Event.wait set by a greenlet", event_ping_pong),
        ("gevent.sleep(0)", sleep_zero),
    ):
        rows.append(
            row(
                f"{name} from a portal-task [{loop_name}]",
                "the same from a greenlet + one task wake-up",
                lambda green=green: on_hub(from_greenlet_plus_wakeup(green), loop_factory),
                lambda green=green: on_hub(from_portal_task(green), loop_factory),
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
                f"bg.wait(coro: {name}) from a portal-task [{loop_name}]",
                "greenback.await_ on the same coroutine",
                lambda coroutine=coroutine: on_hub(
                    greenback_awaits(coroutine), loop_factory, portals=False
                ),
                lambda coroutine=coroutine: on_hub(inline_waits(coroutine), loop_factory),
                1.0,
            )
        )
    return rows


def main(argv: Sequence[str]) -> None:
    global REPS
    args = parse_args(__doc__ or "", argv)
    if args.quick:
        REPS = 3
    rows: list[Row] = []
    for loop_name, loop_factory in LOOPS.items():
        if loop_factory == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                print("(uvloop is not installed: skipped)")
                continue
        rows += bench(loop_name, loop_factory)
    emit(rows, args.report)


if __name__ == "__main__":
    main(sys.argv[1:])
