"""What accounting costs: the same hub server with accounting on and off, side by side.

Each row runs one benchmark's hub server twice, in separate processes, the
only difference being ``BRIDGES_ACCOUNTING=1`` or ``0`` (the default is on),
measured in turns (off, on, off, on, ...); the figure is the server's CPU time
per round trip or request (``/proc/PID/task/*/schedstat``), the ratio
``off / on``: 1.0 means accounting is free, the target is >= 0.97 (it costs at
most 3%).  The servers and clients are those of the framework's own benchmark:

* Twisted: 64-byte echo, 50 connections (``bench_twisted.py``);
* gevent: ``StreamServer`` echo, 50 connections (``bench_gevent.py``);
* asyncore: one connection's ping-pong, ``dispatcher_with_send`` (``bench_asyncore.py``);
* Tornado: a ``tornado.web`` handler, one keep-alive connection (``bench_tornado.py``);

all on the stdlib loop.  Run: ``python benchmarks/bench_accounting.py [--quick]
[--report F]`` (about 2 minutes; ``--quick``: 40 s).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Callable, Iterator

from _harness import Row, add_report_options, compare, emit

ENV = "BRIDGES_ACCOUNTING"
TARGET = 0.97


@contextlib.contextmanager
def accounting(on: bool) -> Iterator[None]:
    """Servers started inside inherit ``BRIDGES_ACCOUNTING`` set to on or off."""
    previous = os.environ.get(ENV)
    os.environ[ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = previous


def twisted_echo(round_trips: int) -> Callable[[bool], float]:
    import bench_twisted

    args = argparse.Namespace(round_trips=round_trips)

    def measure(on: bool) -> float:
        with accounting(on):
            return bench_twisted.measure_server("hub", args)["echo50_cpu"]

    return measure


def gevent_echo(_: int) -> Callable[[bool], float]:
    import bench_gevent

    def measure(on: bool) -> float:
        with accounting(on):
            return bench_gevent.measure_server("asyncio", "echo")

    return measure


def asyncore_ping_pong(round_trips: int) -> Callable[[bool], float]:
    import bench_asyncore

    def measure(on: bool) -> float:
        with accounting(on):
            server = bench_asyncore.Server("hub", 0)
        cpu = min(os.sched_getaffinity(0))
        everything = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(server.proc.pid, {cpu})
            os.sched_setaffinity(0, {cpu})
            server.ping_pong(200)
            return server.us_per_round_trip(round_trips)
        finally:
            os.sched_setaffinity(0, everything)
            server.close()

    return measure


def tornado_http(requests: int) -> Callable[[bool], float]:
    import bench_tornado

    def measure(on: bool) -> float:
        cpu = min(os.sched_getaffinity(0))
        everything = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        with accounting(on):
            server = bench_tornado.Server("hub", "asyncio", cpu)
        client = bench_tornado.Client(server.port)
        try:
            servers, clients = {"hub": server}, {"hub": client}
            bench_tornado.batch(servers, clients, requests // 4)
            return bench_tornado.batch(servers, clients, requests)["hub"][0]
        finally:
            client.close()
            server.close()
            os.sched_setaffinity(0, everything)

    return measure


CASES = {
    "twisted": ("Twisted echo, 50 conns x 64 B, server CPU", "µs/round trip", twisted_echo),
    "gevent": ("gevent StreamServer echo, 50 conns, server CPU", "µs/round trip", gevent_echo),
    "asyncore": ("asyncore ping-pong, 1 conn, server CPU", "µs/round trip", asyncore_ping_pong),
    "tornado": ("Tornado HTTP handler, 1 conn, server CPU", "µs/request", tornado_http),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help=f"some of: {', '.join(CASES)} (default: all)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=3000)
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.reps, args.round_trips = 3, 1500
    rows: list[Row] = []
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    for name in args.cases or list(CASES):
        title, unit, make = CASES[name]
        measure = make(args.round_trips)
        row = compare(
            benchmark="accounting",
            case=f"{title}, accounting on vs off",
            unit=unit,
            higher_is_better=False,
            baseline_name="the same hub server, accounting off",
            baseline=lambda measure=measure: measure(False),
            ours=lambda measure=measure: measure(True),
            repetitions=args.reps,
            target=f">= {TARGET}x accounting off (costs <= 3%)",
            target_ratio=TARGET,
        )
        print(
            f"{title}: on {row.ours:.1f} vs off {row.baseline:.1f} {unit}, ratio off/on "
            f"{row.ratio:.3f} (min {row.ratio_min:.3f}, max {row.ratio_max:.3f})",
            file=sys.stderr,
        )
        rows.append(row)
    print(
        f"Python {sys.version.split()[0]}, {args.reps} interleaved repetitions; "
        "ratio = CPU with accounting off / on (1.0: free; >= 0.97: costs at most 3%)"
    )
    emit(rows, args.report)


if __name__ == "__main__":
    main()
