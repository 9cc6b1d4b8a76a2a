"""A Tornado ``@gen.coroutine`` yielding a bridged primitive vs yielding a plain asyncio future.

On the hub, ``tornado.gen.convert_yielded`` is taught every type
``bridges.awaitable()`` knows, so a ``@gen.coroutine`` can ``yield`` a Twisted
Deferred (docs/tornado.md).  This measures what that costs per ``yield``,
against the physical limit: the same coroutine, on the same hub and loop,
yielding a plain asyncio future.  Both sides use the same mechanism: each
``yield`` waits on an object that a ``loop.call_soon`` callback resolves on
the next loop pass:

* baseline: ``f = loop.create_future(); loop.call_soon(f.set_result, n); yield f``;
* ours: ``d = Deferred(); loop.call_soon(d.callback, n); yield d``;
* the limit (nothing of bridges): ``d = Deferred()`` whose one callback (put
  straight onto its list) sets a plain future ``f``, ``loop.call_soon(d.callback, n)``,
  ``yield f``: what Twisted's own ``Deferred()`` and ``callback()`` cost on
  top of the baseline, which a bridged yield of a Deferred cannot go below.

Batches of the three alternate (A B C A B C ...) on one hub
(``frameworks=["tornado", "twisted"]``), the process CPU time of each batch
divided by its yields; the figure is the median of the per-repetition
ratios, with min-max.  Target: a bridged yield costs at most 1.3x a plain one.

    python benchmarks/bench_tornado_gen.py [--yields 20000] [--reps 7] [--loop asyncio|uvloop|both]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Callable

from _harness import Row, add_report_options, emit, summarise

import bridges

TARGET = 1.3


def _passthrough(result: object) -> object:
    return result


def coroutines() -> tuple[Callable[[int], Any], Callable[[int], Any], Callable[[int], Any]]:
    """The three ``@gen.coroutine`` functions, made after the frameworks are importable."""
    from tornado import gen
    from twisted.internet.defer import Deferred

    from bridges.twisted._compat import _callbacks_of

    @gen.coroutine
    def plain(count: int) -> Any:
        loop = asyncio.get_running_loop()
        total = 0
        for n in range(count):
            future = loop.create_future()
            loop.call_soon(future.set_result, n)
            total += yield future
        return total

    @gen.coroutine
    def bridged(count: int) -> Any:
        loop = asyncio.get_running_loop()
        total = 0
        for n in range(count):
            d: Deferred[int] = Deferred()
            loop.call_soon(d.callback, n)
            total += yield d
        return total

    @gen.coroutine
    def floor(count: int) -> Any:
        loop = asyncio.get_running_loop()
        no_kwargs: dict[str, object] = {}
        total = 0
        for n in range(count):
            d: Deferred[int] = Deferred()
            future = loop.create_future()
            _callbacks_of(d).append(
                ((future.set_result, (), no_kwargs), (_passthrough, (), no_kwargs))
            )
            loop.call_soon(d.callback, n)
            total += yield future
        return total

    return plain, bridged, floor


async def measure(yields: int, reps: int, loop_name: str) -> list[Row]:
    plain, bridged, floor = coroutines()
    expected = yields * (yields - 1) // 2

    async def per_yield(coroutine: Callable[[int], Any]) -> float:
        start = time.process_time()
        total = await coroutine(yields)
        spent = time.process_time() - start
        assert total == expected, (total, expected)
        return spent / yields * 1e6

    for coroutine in (plain, bridged, floor):  # warm up every path (imports, caches)
        await per_yield(coroutine)
    baselines: list[float] = []
    ours: list[float] = []
    limits: list[float] = []
    for _ in range(reps):
        baselines.append(await per_yield(plain))
        ours.append(await per_yield(bridged))
        limits.append(await per_yield(floor))

    def row(case: str, figures: list[float], **target: Any) -> Row:
        return summarise(
            benchmark="tornado",
            case=f"{case}, {loop_name} loop",
            unit="µs/yield",
            higher_is_better=False,
            baseline_name="the same coroutine yielding an asyncio future",
            baselines=baselines,
            ours=figures,
            **target,
        )

    return [
        row(
            "gen.coroutine yielding a Deferred vs a plain future",
            ours,
            target=f"cost <= {TARGET}x",
            target_ratio=1 / TARGET,
        ),
        row(
            "the limit: gen.coroutine yielding a future set by Twisted's Deferred() "
            "and callback() alone",
            limits,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yields", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.yields, args.reps = 5000, 5
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    rows = []
    for loop_name in loops:
        rows.extend(
            bridges.run(
                lambda loop_name=loop_name: measure(args.yields, args.reps, loop_name),
                frameworks=["tornado", "twisted"],
                loop_factory=loop_name,
            )
        )
    emit(rows, args.report)


if __name__ == "__main__":
    main()
