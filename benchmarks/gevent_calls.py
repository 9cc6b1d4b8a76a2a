"""Machine-independent cost of bench_gevent.py's in-process rows: Python calls and opcodes per op.

Usage::

    python benchmarks/gevent_calls.py                 # every row, stdlib loop
    python benchmarks/gevent_calls.py wait uvloop     # one row, on uvloop
    python benchmarks/gevent_calls.py echo            # the echo server's io path, in-process

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
LANES = 50


def echo_lanes() -> float:
    """``LANES`` client/server greenlet pairs echo 64 B over socketpairs, ROUND_TRIPS in all.

    The echo server's io path (a wait per EAGAIN: watcher start, poll, the
    hub firing the watcher, stop) in one process and deterministic, unlike
    a server fed by another process, whose batching moves with the load:
    each round trip is two sends, two waits and their share of the polls.
    libev's share is C, so the native row counts gevent's socket code only.
    """
    import gevent
    import gevent.socket

    pairs = [gevent.socket.socketpair() for _ in range(LANES)]

    def serve(sock: Any) -> None:
        while True:
            data = sock.recv(64)
            if not data:
                return
            sock.sendall(data)

    def ask(sock: Any, rounds: int) -> None:
        for _ in range(rounds):
            sock.sendall(bench.PAYLOAD)
            if sock.recv(64) != bench.PAYLOAD:
                raise AssertionError("echo payload mismatch")

    servers = [gevent.spawn(serve, right) for _left, right in pairs]
    rounds = bench.ROUND_TRIPS // LANES
    gevent.joinall([gevent.spawn(ask, left, rounds) for left, _right in pairs], raise_error=True)
    for left, _right in pairs:
        left.close()  # each server reads the end of its stream and returns
    gevent.joinall(servers, raise_error=True)
    for _left, right in pairs:
        right.close()
    return 0.0


def hub_echo_lanes(loop_factory: str | None) -> float:
    import gevent

    import bridges

    async def main() -> float:
        return await bridges.awaitable(gevent.spawn(echo_lanes))  # type: ignore[no-any-return]

    return bridges.run(main, frameworks=["gevent"], loop_factory=loop_factory)  # type: ignore[no-any-return]


ROWS: dict[str, Callable[[Any], float]] = {
    "plain": bench.asyncio_round_trip,
    "pingpong": bench.coroutine_awaits_greenlet,
    "wait": bench.greenlet_waits_on_asyncio,
    "spawn": bench.hub_await_fresh_greenlet,
    "native-pingpong": lambda _kind: bench.native_gevent_round_trip(),
    "native-spawn": lambda _kind: bench.native_spawn_join(),
    "echo": hub_echo_lanes,
    "native-echo": lambda _kind: echo_lanes(),
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
