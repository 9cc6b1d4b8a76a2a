"""Awaiting a Deferred through bridges vs awaiting a plain asyncio future, resolved the same way.

    cd benchmarks && python bench_twisted_await.py [--reps 7] [--quick] [--report F]

Each await waits for a primitive resolved on the next loop pass, and each
baseline is a plain asyncio future resolved by the very same mechanism:

* ``deferred``: ``loop.call_soon(d.callback, i)``, ``await bridges.awaitable(d)``,
  against ``future``: ``loop.call_soon(fut.set_result, i)``, ``await fut``
  (the target's row: what awaiting a Deferred costs over a future);
* ``deferred+cL``: ``reactor.callLater(0, d.callback, i)``, against
  ``future+cL``: ``reactor.callLater(0, fut.set_result, i)`` (how Twisted code
  usually fires one: the reactor's timer path on both sides);
* ``floor``: what Twisted's own part costs, with nothing of bridges: a
  ``Deferred()`` fired by ``loop.call_soon(d.callback, i)`` whose one callback
  (put straight onto its list, as bridges does) sets a plain future, against
  ``future`` (the limit row: awaiting a Deferred cannot cost less than this);
* ``bt.deferred``: a coroutine wrapped with ``bt.deferred`` and awaited back
  (asyncio -> Twisted -> asyncio: a task, a Deferred and a future), against
  ``task``: the same coroutine run as a task and awaited.

Also the cost of the hub's fd registry on the reactor's hot path: an
``add_writer`` + ``remove_writer`` pair through the hub (owner "twisted")
against the same pair on the loop directly.

Interleaved in one hub run (A B C A B C ...); ratios are per repetition.
The target (docs/benchmarks.md): awaiting a Deferred costs at most 1.5x a plain future
fired the same way (``call_soon``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Awaitable, Callable

from _harness import Row, emit

import bridges
from bridges import twisted as bt


async def plain_future(n: int) -> float:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for i in range(n):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, i)
        if await fut != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def future_by_call_later(n: int) -> float:
    from twisted.internet import reactor

    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for i in range(n):
        fut = loop.create_future()
        reactor.callLater(0, fut.set_result, i)
        if await fut != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def deferred_by_call_soon(n: int) -> float:
    from twisted.internet.defer import Deferred

    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for i in range(n):
        d: Deferred[int] = Deferred()
        loop.call_soon(d.callback, i)
        if await bridges.awaitable(d) != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


def _passthrough(result: object) -> object:
    return result


async def deferred_floor(n: int) -> float:
    from twisted.internet.defer import Deferred

    from bridges.twisted._compat import _callbacks_of

    loop = asyncio.get_running_loop()
    no_kwargs: dict[str, object] = {}
    start = time.perf_counter()
    for i in range(n):
        d: Deferred[int] = Deferred()
        fut = loop.create_future()
        _callbacks_of(d).append(((fut.set_result, (), no_kwargs), (_passthrough, (), no_kwargs)))
        loop.call_soon(d.callback, i)
        if await fut != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def deferred_by_call_later(n: int) -> float:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    start = time.perf_counter()
    for i in range(n):
        d: Deferred[int] = Deferred()
        reactor.callLater(0, d.callback, i)
        if await bridges.awaitable(d) != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def _value(i: int) -> int:
    return i


async def plain_task(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        if await asyncio.ensure_future(_value(i)) != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def round_trip_through_deferred(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        if await bridges.awaitable(bt.deferred(_value(i))) != i:
            raise RuntimeError("wrong result")
    return (time.perf_counter() - start) / n


async def writer_via_loop(n: int) -> float:
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair()
    fd = left.fileno()
    start = time.perf_counter()
    for _ in range(n):
        loop.add_writer(fd, _nothing)
        loop.remove_writer(fd)
    elapsed = time.perf_counter() - start
    left.close()
    right.close()
    return elapsed / n


async def writer_via_hub(n: int) -> float:
    hub = bridges.current_hub()
    left, right = socket.socketpair()
    fd = left.fileno()
    start = time.perf_counter()
    for _ in range(n):
        hub.add_writer(fd, _nothing, owner="twisted")
        hub.remove_writer(fd, owner="twisted")
    elapsed = time.perf_counter() - start
    left.close()
    right.close()
    return elapsed / n


def _nothing() -> None:
    pass


CASES: list[tuple[str, Callable[[int], Awaitable[float]]]] = [
    ("future", plain_future),
    ("deferred", deferred_by_call_soon),
    ("floor", deferred_floor),
    ("future+cL", future_by_call_later),
    ("deferred+cL", deferred_by_call_later),
    ("task", plain_task),
    ("bt.deferred", round_trip_through_deferred),
    ("loop writer", writer_via_loop),
    ("hub writer", writer_via_hub),
]


async def measure(reps: int, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(reps):
        for name, case in CASES:
            await case(n // 10)  # warm-up
            times[name].append(await case(n) * 1e6)
    return times


def rows(times: dict[str, list[float]], loop_name: str) -> list[Row]:
    out = []
    for name, baseline, target in (
        ("deferred", "future", 1 / 1.5),
        ("floor", "future", None),
        ("deferred+cL", "future+cL", None),
        ("bt.deferred", "task", None),
    ):
        ratios = [base / mine for mine, base in zip(times[name], times[baseline])]
        ratio = statistics.median(ratios)
        out.append(
            Row(
                benchmark="twisted",
                case=f"{CASE_NAMES[name]}, {loop_name} loop",
                unit="us per await",
                higher_is_better=False,
                ours=statistics.median(times[name]),
                baseline=statistics.median(times[baseline]),
                baseline_name=BASELINES[baseline],
                ratio=ratio,
                ratio_min=min(ratios),
                ratio_max=max(ratios),
                target="cost <= 1.5x the future" if target else "",
                target_ratio=target,
                meets_target=None if target is None else ratio >= target,
            )
        )
    ratios = [base / mine for mine, base in zip(times["hub writer"], times["loop writer"])]
    out.append(
        Row(
            benchmark="twisted",
            case=f"add+remove a writer via the hub's fd registry, {loop_name} loop",
            unit="us per pair",
            higher_is_better=False,
            ours=statistics.median(times["hub writer"]),
            baseline=statistics.median(times["loop writer"]),
            baseline_name="loop.add_writer/remove_writer",
            ratio=statistics.median(ratios),
            ratio_min=min(ratios),
            ratio_max=max(ratios),
            target="",
        )
    )
    return out


CASE_NAMES = {
    "deferred": "await a Deferred fired by loop.call_soon(d.callback)",
    "floor": "the limit: Twisted's Deferred() and callback() alone setting a future",
    "deferred+cL": "await a Deferred fired by reactor.callLater(0, d.callback)",
    "bt.deferred": "await bt.deferred(coroutine)",
}
BASELINES = {
    "future": "future fired by loop.call_soon(f.set_result)",
    "future+cL": "future fired by reactor.callLater(0, f.set_result)",
    "task": "the coroutine as a task",
}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--report", help="write the result rows to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.n = 3, 5000
    out = []
    for loop_name in ("stdlib", "uvloop"):
        times = bridges.run(
            measure,
            args.reps,
            args.n,
            frameworks=["twisted"],
            loop_factory="uvloop" if loop_name == "uvloop" else None,
        )
        out += rows(times, loop_name)
    print(f"{args.reps} interleaved repetitions of {args.n} awaits per case and loop")
    emit(out, args.report)


if __name__ == "__main__":
    cli()
