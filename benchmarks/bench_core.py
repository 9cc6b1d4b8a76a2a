"""Awaiting the primitives that need no framework, against a plain asyncio future.

A generator coroutine waits on a future resolved on the next loop pass
(``call_soon``), and so does the baseline, a plain future awaited directly.  A
``concurrent.futures.Future`` is resolved by a worker thread, its real use; the
baseline there is an asyncio future the same thread resolves through
``call_soon_threadsafe``.  Target (docs/benchmarks.md): awaiting a bridged primitive
costs at most 1.5x awaiting a plain asyncio future resolved the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any, Awaitable, Callable, Generator

from _harness import Row, compare, emit, parse_args

import bridges


def legacy(fut: asyncio.Future[int]) -> Generator[Any, Any, int]:
    value = yield from fut
    return value


async def plain(loop: asyncio.AbstractEventLoop, i: int) -> int:
    fut = loop.create_future()
    loop.call_soon(fut.set_result, i)
    return await fut


async def generator(loop: asyncio.AbstractEventLoop, i: int) -> int:
    fut = loop.create_future()
    loop.call_soon(fut.set_result, i)
    return await bridges.awaitable(legacy(fut))


_worker = concurrent.futures.ThreadPoolExecutor(1)


async def plain_from_thread(loop: asyncio.AbstractEventLoop, i: int) -> int:
    fut = loop.create_future()
    _worker.submit(loop.call_soon_threadsafe, fut.set_result, i)
    return await fut


async def concurrent_future(loop: asyncio.AbstractEventLoop, i: int) -> int:
    fut: concurrent.futures.Future[int] = concurrent.futures.Future()
    _worker.submit(fut.set_result, i)
    return await bridges.awaitable(fut)


Await = Callable[[asyncio.AbstractEventLoop, int], Awaitable[int]]


def microseconds_per_await(await_one: Await, count: int, loop_factory: Any) -> float:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        for i in range(count):
            if await await_one(loop, i) != i:
                raise AssertionError("wrong result")
        return (time.perf_counter() - start) / count * 1e6

    return bridges.run(main, frameworks=None, loop_factory=loop_factory)  # type: ignore[no-any-return]


def main() -> None:
    args = parse_args(__doc__ or "")
    count, repetitions = (2_000, 3) if args.quick else (20_000, 7)
    rows: list[Row] = []
    for loop_name, factory in (("stdlib loop", None), ("uvloop", "uvloop")):
        for name, candidate, reference in (
            ("Tulip-era generator", generator, plain),
            ("concurrent.futures.Future set in a thread", concurrent_future, plain_from_thread),
        ):
            rows.append(
                compare(
                    benchmark="core",
                    case=f"await {name}, {loop_name}",
                    unit="µs per await",
                    higher_is_better=False,
                    baseline_name="plain asyncio future",
                    baseline=lambda r=reference, f=factory: microseconds_per_await(r, count, f),
                    ours=lambda c=candidate, f=factory: microseconds_per_await(c, count, f),
                    repetitions=repetitions,
                    target="cost <= 1.5x plain future",
                    target_ratio=1 / 1.5,
                )
            )
    emit(rows, args.report)


if __name__ == "__main__":
    main()
