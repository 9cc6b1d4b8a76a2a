"""Machine-independent cost of bench_gevent.py's in-process rows: Python calls and opcodes per op.

Usage::

    python benchmarks/gevent_calls.py                 # every row, stdlib loop
    python benchmarks/gevent_calls.py wait uvloop     # one row, on uvloop

Each row runs twice, with two numbers of operations, under ``sys.setprofile``
(Python and C calls) and then under opcode tracing; the difference between
the two runs, divided by the difference in operations, is what one operation
costs, without the setup (hub start, imports, greenlet creation).  Timing on
a shared machine moves by tens of percent; these counts do not.  gevent's
compiled parts (its queue, events, greenlets, the libev loop) make no Python
calls and run no Python opcodes, so the native rows count only gevent's
pure-Python parts: compare the hub's rows with the plain asyncio row, and
native gevent by time (bench_gevent.py).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Callable

import bench_gevent as bench

SMALL, LARGE = 300, 900
ROWS: dict[str, Callable[[Any], float]] = {
    "plain": bench.asyncio_round_trip,
    "pingpong": bench.coroutine_awaits_greenlet,
    "wait": bench.greenlet_waits_on_asyncio,
    "spawn": bench.hub_await_fresh_greenlet,
    "native-pingpong": lambda _kind: bench.native_gevent_round_trip(),
    "native-spawn": lambda _kind: bench.native_spawn_join(),
}


def _where(frame: Any) -> str:
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"


def _calls(counts: Counter[str]) -> Any:
    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            counts["py " + _where(frame)] += 1
        elif event == "c_call":
            counts["c " + getattr(arg, "__qualname__", repr(arg))] += 1

    return profile


def _opcodes(counts: Counter[str]) -> Any:
    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            counts[_where(frame)] += 1
        return local

    def trace(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    return trace


def per_op(
    run: Callable[[], float], hook: Callable[[Counter[str]], Any], *, trace: bool
) -> Counter[str]:
    """What one operation of ``run`` adds to the counts ``hook`` keeps."""
    totals = []
    for ops in (SMALL, LARGE):
        bench.ROUND_TRIPS = bench.SPAWNS = ops
        run()  # warm-up at this size
        counts: Counter[str] = Counter()
        install = sys.settrace if trace else sys.setprofile
        install(hook(counts))
        try:
            run()
        finally:
            install(None)
        totals.append(counts)
    return totals[1] - totals[0]


def report(name: str, kind: str | None) -> None:
    row = ROWS[name]

    def run() -> float:
        return row(kind)

    ops = LARGE - SMALL
    calls = per_op(run, _calls, trace=False)
    opcodes = per_op(run, _opcodes, trace=True)
    python = sum(v for k, v in calls.items() if k.startswith("py "))
    c = sum(v for k, v in calls.items() if k.startswith("c "))
    print(
        f"{name} [{kind or 'asyncio'}]: {python / ops:.1f} Python calls, {c / ops:.1f} C calls, "
        f"{sum(opcodes.values()) / ops:.0f} opcodes per op"
    )
    for where, count in opcodes.most_common(12):
        if count >= ops:
            print(f"  {count / ops:7.1f} opcodes  {where}")


def main(argv: list[str]) -> None:
    names = [argv[0]] if argv else list(ROWS)
    kind = argv[1] if len(argv) > 1 else None
    unknown = set(names) - set(ROWS)
    if unknown:
        raise SystemExit(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    for name in names:
        report(name, kind)


if __name__ == "__main__":
    main(sys.argv[1:])
