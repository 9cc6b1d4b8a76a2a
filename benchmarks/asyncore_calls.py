"""Machine-independent cost of bench_asyncore.py's servers: Python and C calls per round trip.

Usage::

    python benchmarks/asyncore_calls.py                  # every server, both cases
    python benchmarks/asyncore_calls.py hub select       # some servers
    python benchmarks/asyncore_calls.py --top 15 hub     # and the calls that cost most
    python benchmarks/asyncore_calls.py --idle 0 hub     # one active connection alone

Each server of bench_asyncore.py runs in a child process under
``sys.setprofile``; a client thread in that process does the benchmark's
work (one active connection beside 1,000 idle ones; 50 connections kept
busy) and counts, once warmed up, the server thread's Python calls, C calls
and loop passes per round trip.  Timing on a shared machine moves by tens of
percent; these counts do not.  uvloop's loop makes no Python calls and its
passes cannot be counted from Python: its rows count the callbacks only.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import bench_asyncore as bench

IDLE, ROUNDS, BUSY_ROUNDS = 1000, 3000, 60
"""The idle case's idle connections (``--idle``), round trips counted, rounds per busy one."""
PASSES = {"base_events.py:_run_once", "asyncore.py:poll", "asyncore.py:poll2"}
"""The functions that run once per loop pass (the stdlib loop's, asyncore's own)."""


def _where(frame: Any) -> str:
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"


class _Counting:
    """The server thread's profile function; counts only while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.counts: Counter[str] = Counter()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if not self.on:
            return
        if event == "call":
            self.counts["py " + _where(frame)] += 1
        elif event == "c_call":
            self.counts["c " + getattr(arg, "__qualname__", repr(arg))] += 1


class _Opcodes(_Counting):
    """The server thread's trace function: opcodes per function while ``on``."""

    def __call__(self, frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return self.local

    def local(self, frame: Any, event: str, arg: Any) -> Any:
        if self.on and event == "opcode":
            self.counts["op " + _where(frame)] += 1
        return self.local


class _Port:
    """Stands in for ``sys.stdout`` while the server prints its port."""

    def __init__(self, ports: queue.Queue[int]) -> None:
        self.ports = ports

    def write(self, text: str) -> int:
        if text.strip():
            self.ports.put(int(text))
        return len(text)

    def flush(self) -> None:
        pass


def _client(case: str, idle_count: int, ports: queue.Queue[int], counting: _Counting) -> None:
    port = ports.get(timeout=30)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle_count)]
    server = bench.Server.__new__(bench.Server)
    server.mode = "server"
    server.active = socket.create_connection(("127.0.0.1", port))
    server.active.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.ping_pong(300)
    if case == "idle":
        rounds = ROUNDS
        counting.on = True
        server.ping_pong(rounds)
    else:
        server.busy = bench.connect_busy(port, bench.ACTIVE)
        server.echo_busy(20)
        rounds = BUSY_ROUNDS * len(server.busy)
        counting.on = True
        server.echo_busy(BUSY_ROUNDS)
    counting.on = False
    counts = dict(counting.counts)
    sys.__stdout__.write(json.dumps({"rounds": rounds, "counts": counts}) + "\n")
    sys.__stdout__.flush()
    del idle
    os._exit(0)


def child(mode: str, case: str, what: str, idle: int) -> None:
    ports: queue.Queue[int] = queue.Queue()
    counting = _Opcodes() if what == "opcodes" else _Counting()
    idle_count = idle if case == "idle" else 0
    threading.Thread(target=_client, args=(case, idle_count, ports, counting), daemon=True).start()
    sys.stdout = _Port(ports)  # type: ignore[assignment]
    if what == "opcodes":
        sys.settrace(counting)
    else:
        sys.setprofile(counting)
    bench.serve(mode)


def measure(mode: str, case: str, what: str, idle: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, case, what, str(idle)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modes", nargs="*", default=list(bench.MODES))
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest calls")
    parser.add_argument("--case", choices=("idle", "busy"), action="append")
    parser.add_argument(
        "--idle", type=int, default=IDLE, help=f"idle connections in the idle case ({IDLE})"
    )
    args = parser.parse_args()
    print(f"{'server':<16} {'case':<22} {'py/rt':>7} {'C/rt':>7} {'ops/rt':>7} {'passes/rt':>9}")
    for case in args.case or ("idle", "busy"):
        for mode in args.modes:
            if case == "idle" and mode in bench.NATIVE and args.idle > 100:
                continue  # select() cannot take the fds; poll() over 1,000 of them, traced: hours
            result = measure(mode, case, "calls", args.idle)
            rounds, counts = result["rounds"], Counter(result["counts"])
            opcodes = Counter(measure(mode, case, "opcodes", args.idle)["counts"])
            py = sum(n for k, n in counts.items() if k.startswith("py "))
            c = sum(n for k, n in counts.items() if k.startswith("c "))
            passes = sum(n for k, n in counts.items() if k[3:] in PASSES)
            label = f"1 active + {args.idle} idle" if case == "idle" else f"{bench.ACTIVE} active"
            shown = f"{passes / rounds:9.3f}" if passes else f"{'-':>9}"
            ops = sum(opcodes.values()) / rounds
            print(f"{mode:<16} {label:<22} {py / rounds:7.2f} {c / rounds:7.2f} {ops:7.1f} {shown}")
            for name, n in (counts + opcodes).most_common(args.top):
                print(f"    {n / rounds:8.3f}  {name}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
