"""Machine-independent cost of awaiting or yielding a Deferred: Python calls and opcodes per await.

Usage::

    python benchmarks/deferred_calls.py                # every case, both loops
    python benchmarks/deferred_calls.py uvloop         # one loop
    python benchmarks/deferred_calls.py --top 20       # and the functions called per await

The cases are those of bench_twisted_await.py (``future``, ``deferred``,
``floor``) and bench_tornado_gen.py (``gen plain``, ``gen deferred``,
``gen floor``), on one hub with Twisted and Tornado attached.  Each runs
twice, with two numbers of awaits, under ``sys.setprofile`` (Python and C
calls) and then under opcode tracing; the difference between the two runs,
divided by the difference in awaits, is what one await costs, without the
setup (resuming the suspended coroutines counts as a call each, the same on
every row).  Timing on a shared machine moves by tens of percent; these
counts do not.  ``deferred`` minus ``floor`` is what the bridge adds to what Twisted's
own ``Deferred()`` and ``callback()`` cost.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any, Awaitable, Callable

import bench_tornado_gen
import bench_twisted_await
from gevent_calls import _calls, _opcodes

import bridges

SMALL, LARGE = 300, 900


def cases() -> dict[str, Callable[[int], Awaitable[Any]]]:
    plain, bridged, floor = bench_tornado_gen.coroutines()
    return {
        "future": bench_twisted_await.plain_future,
        "deferred": bench_twisted_await.deferred_by_call_soon,
        "floor": bench_twisted_await.deferred_floor,
        "gen plain": plain,
        "gen deferred": bridged,
        "gen floor": floor,
    }


async def count(case: Callable[[int], Awaitable[Any]], awaits: int) -> tuple[Counter[str], int]:
    """Calls by name (``py ``/``c `` in front) and opcodes, for ``awaits`` awaits."""
    calls: Counter[str] = Counter()
    opcodes: Counter[str] = Counter()
    for install, hook in ((sys.setprofile, _calls(calls)), (sys.settrace, _opcodes(opcodes))):
        install(hook)
        try:
            await case(awaits)
        finally:
            install(None)
    return calls, sum(opcodes.values())


async def per_await(top: int) -> list[str]:
    lines = []
    for name, case in cases().items():
        await case(50)  # warm up: imports, caches
        small_calls, small_ops = await count(case, SMALL)
        large_calls, large_ops = await count(case, LARGE)
        per = {key: (large_calls[key] - small_calls[key]) / (LARGE - SMALL) for key in large_calls}
        python = sum(value for key, value in per.items() if key.startswith("py "))
        native = sum(value for key, value in per.items() if key.startswith("c "))
        opcodes = (large_ops - small_ops) / (LARGE - SMALL)
        lines.append(
            f"  {name:13s} {python:5.1f} Python calls  {native:5.1f} C calls  "
            f"{opcodes:6.1f} opcodes per await"
        )
        ranked = sorted(per.items(), key=lambda item: -item[1])
        lines += [f"      {value:4.1f}  {key}" for key, value in ranked[:top] if value >= 0.5]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("loops", nargs="*", help="asyncio, uvloop (default: both)")
    parser.add_argument("--top", type=int, default=0, help="list the N functions called most")
    args = parser.parse_args()
    for loop_name in args.loops or ("asyncio", "uvloop"):
        lines = bridges.run(
            per_await, args.top, frameworks=["tornado", "twisted"], loop_factory=loop_name
        )
        print(f"{loop_name} loop:")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
