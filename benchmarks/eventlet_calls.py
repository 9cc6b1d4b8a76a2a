"""Machine-independent cost of bench_eventlet.py's echo server: Python calls per round trip.

Usage::

    python benchmarks/eventlet_calls.py                # native epoll hub, stdlib loop, uvloop
    python benchmarks/eventlet_calls.py asyncio --top 25

The echo server of ``bench_eventlet.py echo`` runs in a subprocess under
``sys.setprofile`` (Python and C calls, in the thread that runs the hub
only), then under opcode tracing; the client runs here.  It is one
connection that pauses before each request, so that every round trip is
the same work whatever the speed: one loop pass, one wake-up, one recv
that finds data, one send, one recv that finds none (EAGAIN) and so one
wait for the fd.  (Without the pause, how often a recv finds the next
request already there depends on speed, and the counting changes that;
in the timed benchmark, 50 connections share a loop pass.)  Two batches
are served, one short and one long; the difference between their counts,
divided by the difference in round trips, is what one round trip costs,
without the setup (imports, accepting the connection, spawning its
greenthread).  Timing on a shared machine moves by tens of percent; these
counts do not.  The native row is eventlet's own epoll hub serving the
same greenthreads.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import bench_eventlet as bench
from bench_gevent import PAYLOAD, _has_uvloop
from gevent_calls import _calls as _count_calls
from gevent_calls import _opcodes as _count_opcodes

SHORT, LONG = 100, 600
"""Round trips of the two batches."""
PAUSE = 0.002
"""Seconds the client waits before each request: the server is waiting for it by then."""
MODES = ["native", "asyncio", "uvloop"]


def _client(port: int, rounds: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(rounds):
            time.sleep(PAUSE)
            sock.sendall(PAYLOAD)
            echoed = b""
            while len(echoed) < len(PAYLOAD):
                echoed += sock.recv(len(PAYLOAD) - len(echoed))
            if echoed != PAYLOAD:
                raise AssertionError("echo payload mismatch")
    return rounds


def serve_counted(mode: str, what: str) -> None:
    """Subprocess entry: the echo server, counting; each stdin line prints the counts."""
    counts: Counter[str] = Counter()

    def answer() -> None:
        for _ in sys.stdin:
            print(json.dumps(dict(counts)), flush=True)

    threading.Thread(target=answer, daemon=True).start()
    if what == "calls":
        sys.setprofile(_count_calls(counts))
    else:
        sys.settrace(_count_opcodes(counts))
    bench.serve(mode)


def per_round_trip(mode: str, what: str) -> tuple[Counter[str], int]:
    """What one echo round trip adds to the server's counts, and the round trips that told."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, what],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None

    def snapshot() -> Counter[str]:
        proc.stdin.write("\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return Counter(json.loads(proc.stdout.readline()))  # type: ignore[union-attr]

    try:
        port = int(proc.stdout.readline())
        _client(port, SHORT)  # warm-up
        start = snapshot()
        short = _client(port, SHORT)
        middle = snapshot()
        long = _client(port, LONG)
        end = snapshot()
    finally:
        proc.kill()
        proc.wait()
    return (end - middle) - (middle - start), long - short


def report(mode: str, top: int) -> None:
    calls, trips = per_round_trip(mode, "calls")
    opcodes, opcode_trips = per_round_trip(mode, "opcodes")
    python = sum(v for k, v in calls.items() if k.startswith("py "))
    c = sum(v for k, v in calls.items() if k.startswith("c "))
    print(
        f"{mode}: {python / trips:.1f} Python calls, {c / trips:.1f} C calls, "
        f"{sum(opcodes.values()) / opcode_trips:.0f} opcodes per round trip"
    )
    for where, count in calls.most_common(top):
        if count >= trips / 100:
            print(f"  {count / trips:6.2f} calls    {where}")
    for where, count in opcodes.most_common(top):
        if count >= opcode_trips / 100:
            print(f"  {count / opcode_trips:6.1f} opcodes  {where}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--serve"]:
        serve_counted(argv[1], argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("modes", nargs="*", help=f"which servers (default all): {MODES}")
    parser.add_argument("--top", type=int, default=15, help="how many callees to list")
    args = parser.parse_args(argv)
    modes = args.modes or [m for m in MODES if m != "uvloop" or _has_uvloop()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(MODES)}")
    for mode in modes:
        report(mode, args.top)


if __name__ == "__main__":
    main(sys.argv[1:])
