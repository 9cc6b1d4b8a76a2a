"""eventlet on the hub vs eventlet's own hubs, measured side by side in one run.

Usage::

    python benchmarks/bench_eventlet.py            # everything, about a minute
    python benchmarks/bench_eventlet.py roundtrip  # or: echo

Round trips (µs of CPU per trip, one process per measurement): a greenthread
waits on asyncio futures a task resolves, and a coroutine awaits a freshly
spawned greenthread.  The baseline is eventlet's own asyncio hub
(``EVENTLET_HUB=asyncio``) doing the same work with its own bridges
(``eventlet.asyncio.spawn_for_awaitable(fut).wait()`` and ``await gt``);
the hub runs on the stdlib loop (and uvloop, where installed).  Each case
is also measured against the limit, a plain asyncio future round trip on
the same kind of loop (a task resolves the futures another awaits); those
rows carry the 15 µs target and say how far from plain asyncio we are.

Echo: a green-socket echo server (``eventlet.listen`` + one greenthread per
connection, ``recv``/``sendall``) served by the bridges hub vs the same
server on eventlet's native epoll hub, 50 connections x 64 bytes; the figure
is the *server process's* CPU time per round trip (``/proc/PID/schedstat``).
Every echoed payload is checked.  Baseline and candidate alternate; the
ratio is the median of the per-repetition ratios (min-max shown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from _harness import Row, add_report_options, compare, emit
from bench_gevent import _cpu_ns, _echo_clients, _has_uvloop, loop_kinds, resolve_in_turn

REPS = 5
SERVER_REPS = 7
ROUND_TRIPS = 3000
CONNECTIONS = 50  # bench_gevent's echo clients: 50 connections x 300 rounds of 64 bytes


# -- round trips, each measured in a fresh process ----------------------------------


def _hub_round_trips(case: str, loop_factory: str | None) -> float:
    import eventlet

    import bridges
    from bridges import eventlet as be

    async def main() -> float:
        loop = asyncio.get_running_loop()
        if case == "wait":
            queue: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
            task = asyncio.ensure_future(resolve_in_turn(queue))

            def waiter() -> float:
                start = time.thread_time()
                for _ in range(ROUND_TRIPS):
                    fut = loop.create_future()
                    queue.put_nowait(fut)
                    be.wait(fut)
                return time.thread_time() - start

            elapsed = await bridges.awaitable(eventlet.spawn(waiter))
            task.cancel()
        else:
            start = time.thread_time()
            for i in range(ROUND_TRIPS):
                await bridges.awaitable(eventlet.spawn(int, i))
            elapsed = time.thread_time() - start
        return elapsed / ROUND_TRIPS * 1e6

    return bridges.run(main, frameworks=["eventlet"], loop_factory=loop_factory)  # type: ignore[no-any-return]


def _plain_asyncio_round_trips(loop_factory: str | None) -> float:
    # The limit no bridge can beat: a task resolves the futures another awaits,
    # on the same kind of loop.
    async def main() -> float:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
        task = asyncio.ensure_future(resolve_in_turn(queue))
        start = time.thread_time()
        for _ in range(ROUND_TRIPS):
            fut = loop.create_future()
            queue.put_nowait(fut)
            await fut
        elapsed = time.thread_time() - start
        task.cancel()
        return elapsed / ROUND_TRIPS * 1e6

    if loop_factory == "uvloop":
        import uvloop

        return uvloop.run(main())  # type: ignore[no-any-return]
    return asyncio.run(main())


def _native_asyncio_hub_round_trips(case: str) -> float:
    # eventlet's asyncio hub: the hub greenlet runs its own loop; each pass is
    # one asyncio.wait_for on the hub's sleep event.
    import eventlet
    import eventlet.asyncio
    import eventlet.hubs

    hub = eventlet.hubs.get_hub()
    loop = hub.loop
    if case == "wait":
        queue: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
        task = loop.create_task(resolve_in_turn(queue))

        def waiter() -> float:
            start = time.thread_time()
            for _ in range(ROUND_TRIPS):
                fut = loop.create_future()
                queue.put_nowait(fut)
                eventlet.asyncio.spawn_for_awaitable(fut).wait()
            return time.thread_time() - start

        elapsed = eventlet.spawn(waiter).wait()
        task.cancel()
    else:

        async def awaiter() -> float:
            start = time.thread_time()
            for i in range(ROUND_TRIPS):
                await eventlet.spawn(int, i)
            return time.thread_time() - start

        elapsed = eventlet.asyncio.spawn_for_awaitable(awaiter()).wait()
    return elapsed / ROUND_TRIPS * 1e6


def _measure_in_process(mode: str, case: str) -> float:
    env = dict(os.environ)
    if mode == "native-asyncio":
        env["EVENTLET_HUB"] = "asyncio"
    completed = subprocess.run(
        [sys.executable, __file__, "--roundtrip", mode, case],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return float(json.loads(completed.stdout.strip().splitlines()[-1]))


ROUND_TRIP_CASES = {
    "wait": "greenthread waits on asyncio futures (be.wait vs spawn_for_awaitable.wait)",
    "await": "coroutine awaits a fresh greenthread (awaitable(gt) vs await gt)",
}


TARGET_US = 15.0
"""Issue 19's target for both round trips on the stdlib loop, in µs."""


def bench_roundtrip() -> list[Row]:
    """Per case and loop: against eventlet's own asyncio hub, and against the limit.

    The limit is a plain asyncio future round trip (a task resolves the
    futures another awaits) on the same kind of loop: what no bridge can
    beat.  The absolute target (15 µs on the stdlib loop) sits on the limit
    rows, whose ratio says how far from plain asyncio the round trip is.
    """
    rows = []
    for case, what in ROUND_TRIP_CASES.items():
        for loop_factory in loop_kinds():
            mode = loop_factory or "asyncio"
            rows.append(
                compare(
                    benchmark="eventlet",
                    case=f"{what} [{mode}]",
                    unit="µs/round trip",
                    higher_is_better=False,
                    baseline_name="eventlet's asyncio hub",
                    baseline=lambda case=case: _measure_in_process("native-asyncio", case),
                    ours=lambda case=case, mode=mode: _measure_in_process(mode, case),
                    repetitions=REPS,
                )
            )
            row = compare(
                benchmark="eventlet",
                case=f"{what}, vs the limit [{mode}]",
                unit="µs/round trip",
                higher_is_better=False,
                baseline_name="plain asyncio future round trip",
                baseline=lambda mode=mode: _measure_in_process(f"plain-{mode}", "wait"),
                ours=lambda case=case, mode=mode: _measure_in_process(mode, case),
                repetitions=REPS,
                target=f"<= {TARGET_US:g} µs" if mode == "asyncio" else "",
            )
            if mode == "asyncio":
                row.meets_target = row.ours <= TARGET_US
            rows.append(row)
    return rows


# -- echo server, server CPU per round trip -----------------------------------------


def _echo(sock: Any) -> None:
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


def _accept_forever(listener: Any) -> None:
    import eventlet

    while True:
        sock, _ = listener.accept()
        eventlet.spawn(_echo, sock)


def serve(mode: str) -> None:
    """Subprocess entry: run one echo server, print its port, serve until SIGTERM."""
    import eventlet

    listener = eventlet.listen(("127.0.0.1", 0), backlog=CONNECTIONS * 2)
    if mode == "native":
        print(listener.getsockname()[1], flush=True)
        _accept_forever(listener)
        return

    import bridges

    async def main() -> None:
        eventlet.spawn(_accept_forever, listener)
        print(listener.getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()  # until SIGTERM

    bridges.run(main, frameworks=["eventlet"], loop_factory="uvloop" if mode == "uvloop" else None)


def measure_server(mode: str) -> float:
    """Server CPU µs per round trip."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        asyncio.run(_echo_clients(port))  # warm-up connections
        before = _cpu_ns(proc.pid)
        done = asyncio.run(asyncio.wait_for(_echo_clients(port), 30))
        after = _cpu_ns(proc.pid)
        return (after - before) / done / 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_echo() -> list[Row]:
    rows = []
    for mode in ["asyncio", "uvloop"] if _has_uvloop() else ["asyncio"]:
        rows.append(
            compare(
                benchmark="eventlet",
                case=f"green-socket echo, 50 conns x 64 B, server CPU [{mode}]",
                unit="µs/round trip",
                higher_is_better=False,
                baseline_name="eventlet's epoll hub",
                baseline=lambda: measure_server("native"),
                ours=lambda mode=mode: measure_server(mode),
                repetitions=SERVER_REPS,
                target=">= 0.9x native",
                target_ratio=0.9,
            )
        )
    return rows


PARTS = {"roundtrip": bench_roundtrip, "echo": bench_echo}


def main(argv: list[str]) -> None:
    global REPS, SERVER_REPS
    if argv[:1] == ["--serve"]:
        serve(argv[1])
        return
    if argv[:1] == ["--roundtrip"]:
        mode, case = argv[1], argv[2]
        if mode == "native-asyncio":
            figure = _native_asyncio_hub_round_trips(case)
        elif mode.startswith("plain-"):
            kind = mode[len("plain-") :]
            figure = _plain_asyncio_round_trips(None if kind == "asyncio" else kind)
        else:
            figure = _hub_round_trips(case, None if mode == "asyncio" else mode)
        print(json.dumps(figure))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("parts", nargs="*", help=f"which to run (default all): {', '.join(PARTS)}")
    add_report_options(parser)
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.quick:
        REPS = SERVER_REPS = 3
    print(f"Python {sys.version.split()[0]}, {REPS} interleaved repetitions, medians")
    rows: list[Row] = []
    for part in args.parts or list(PARTS):
        rows += PARTS[part]()
    emit(rows, args.report)


if __name__ == "__main__":
    main(sys.argv[1:])
