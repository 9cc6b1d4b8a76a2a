"""Where a server's CPU goes, by whose code runs: the loop's, the framework's, the handler's (perf).

Usage::

    python benchmarks/loop_share.py                  # both servers, native and on the hub
    python benchmarks/loop_share.py gevent           # one server
    python benchmarks/loop_share.py asyncore --round-trips 20000

A benchmark's ratio says how much cheaper native is, not whether the hub
*could* match it: the framework's own code (gevent's sockets, asyncore's
dispatcher methods) and the handler cost the same on both, and only the
loop's share differs.  This runs each server of ``bench_gevent.py``
(``StreamServer`` echo, 50 connections) and ``bench_asyncore.py`` (echo,
50 active connections) under Linux ``perf``, natively and on the hub on
both loops, with the benchmark's own clients, and puts each CPU sample on
the innermost Python function running (``python -X perf`` names them in
the samples; C code counts for the Python function that called it, so
libev's and uvloop's C count for the loop, a ``recv`` system call for the
socket code).  The groups:

* **loop** — the event loop and its dispatch: gevent's ``Hub.run``
  (libev's loop), asyncore's module functions (``loop``, ``poll``,
  ``readwrite``, ...), asyncio, selectors, uvloop, and every ``bridges``
  module;
* **framework** — the framework's other code: gevent's sockets, greenlets
  and events, asyncore's ``dispatcher`` methods;
* **handler** — the benchmark's server code;
* **other** — the rest (the standard library's socket module, ...);
* **unknown** — samples perf could not unwind to a Python frame (C code
  deep below one, mostly uvloop's: likely loop, not counted as such).

Per server (medians of interleaved repetitions): its CPU per round trip
(``/proc/PID/schedstat``, perf's own sampling included, about 1%) and each
group's part of it.  Per hub mode: the **loop budget**, what the hub's loop
and dispatch may cost per round trip to meet the mode's target if
everything else costs what it does natively (the same code), next to what
they cost and what native's loop costs; and the **ceiling**, the ratio a
loop costing nothing would reach.  A budget far below native's own loop
asks the hub to do the loop's work (a poll, a callback per ready fd, a
switch into the handler) that many times cheaper than the native loop's C.

Needs ``perf`` (``perf_event_paranoid`` <= 2) and Python 3.12 or later
(``-X perf``), with the benchmark extras installed.  Takes about a minute
per server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import bench_asyncore
import bench_gevent
from _harness import keep_in_flight, process_cpu_ns

GROUPS = ("loop", "framework", "handler", "other", "unknown")
_FRAME = re.compile(r"py::(?P<function>[^:]+):(?P<path>.*)\+0x[0-9a-f]+ \(")
_SAMPLE = re.compile(r"^\S.*?\s(?P<time>\d+\.\d+):")
_LOOP_PATHS = ("/bridges/", "/asyncio/", "/selectors.py", "/uvloop/")
_ASYNCORE_LOOP = {"loop", "poll", "poll2", "readwrite", "read", "write", "_exception"}


@dataclass
class Server:
    """One server of a benchmark, as the benchmark runs it, and the load its clients put."""

    name: str
    argv: Callable[[str], list[str]]
    """The benchmark's ``--serve`` command line for a mode."""
    modes: tuple[str, ...]
    """Native first, then the hub's modes."""
    load: Callable[[int, int], int]
    """Runs the clients against the port for about N round trips; returns how many ran."""
    targets: dict[str, float]
    """Each hub mode's target: the least speed ratio, native CPU / the hub's."""


def _gevent_load(port: int, round_trips: int) -> int:
    rounds = max(1, round_trips // bench_gevent.CONNECTIONS)
    return asyncio.run(bench_gevent._echo_clients(port, rounds=rounds))


def _check_echo(fd: int, left: int, echo: bytes) -> None:
    if echo != bench_asyncore._payload(fd, left):
        raise AssertionError(f"the asyncore server echoed {echo!r}")


def _asyncore_load(port: int, round_trips: int) -> int:
    per_connection = max(1, round_trips // bench_asyncore.ACTIVE)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(bench_asyncore.ACTIVE)]
    try:
        keep_in_flight(
            socks,
            per_connection,
            bench_asyncore._payload,
            bench_asyncore.PAYLOAD,
            _check_echo,
            "asyncore server",
        )
    finally:
        for sock in socks:
            sock.close()
    return per_connection * len(socks)


SERVERS = {
    "gevent": Server(
        "gevent StreamServer echo, 50 connections",
        lambda mode: [bench_gevent.__file__, "--serve", mode, "echo"],
        ("native", "asyncio", "uvloop"),
        _gevent_load,
        bench_gevent.SERVER_TARGETS["echo"],
    ),
    "asyncore": Server(
        "asyncore echo, 50 active connections",
        lambda mode: [bench_asyncore.__file__, "--serve", mode],
        ("select", "hub", "hub-uvloop"),
        _asyncore_load,
        bench_asyncore.ACTIVE_TARGETS,
    ),
}


def group_of(function: str, path: str) -> str:
    """The group of a sample whose innermost Python function is ``function`` in ``path``."""
    if any(part in path for part in _LOOP_PATHS):
        return "loop"
    if path.endswith(("bench_gevent.py", "bench_asyncore.py")):
        return "handler"
    if "/gevent/" in path:
        return "loop" if path.endswith("/hub.py") and function == "Hub.run" else "framework"
    if "/asyncore" in path:  # the stdlib's asyncore.py, or pyasyncore's asyncore/__init__.py
        return "loop" if function in _ASYNCORE_LOOP else "framework"
    return "other"


def attribute(perf_data: str, start: float, end: float) -> tuple[Counter[str], Counter[str]]:
    """Samples taken between ``start`` and ``end`` (``time.monotonic()``): by group, and the
    loop group's by function."""
    script = subprocess.run(
        ["perf", "script", "-i", perf_data], capture_output=True, text=True, check=True
    ).stdout
    groups: Counter[str] = Counter()
    loop_functions: Counter[str] = Counter()
    for block in script.split("\n\n"):
        lines = block.strip().splitlines()
        stamp = _SAMPLE.match(lines[0]) if lines else None
        if stamp is None or not start <= float(stamp["time"]) <= end:
            continue
        frame = next(filter(None, map(_FRAME.search, lines[1:])), None)
        if frame is None:
            groups["unknown"] += 1
            continue
        group = group_of(frame["function"], frame["path"])
        groups[group] += 1
        if group == "loop":
            loop_functions[f"{frame['function']} ({os.path.basename(frame['path'])})"] += 1
    return groups, loop_functions


def _child_pid(perf_pid: int) -> int:
    """The profiled server: perf's child process."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{perf_pid}/task/{perf_pid}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise RuntimeError("perf started no server")


def profile(
    server: Server, mode: str, round_trips: int, scratch: str
) -> tuple[float, Counter[str], Counter[str]]:
    """Run ``server`` in ``mode`` under perf: CPU µs per round trip, and samples by group."""
    data = os.path.join(scratch, f"{mode}.data")
    perf = subprocess.Popen(
        [
            "perf",
            "record",
            "-q",
            "-F",
            "999",
            "-k",
            "CLOCK_MONOTONIC",
            "--call-graph",
            "dwarf,16384",
            "-o",
            data,
            "--",
            sys.executable,
            "-X",
            "perf",
            *server.argv(mode),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = None
    try:
        assert perf.stdout is not None
        port = int(perf.stdout.readline())
        pid = _child_pid(perf.pid)
        server.load(port, round_trips // 4)  # warm-up
        cpu, start = process_cpu_ns(pid), time.monotonic()
        done = server.load(port, round_trips)
        end, cpu = time.monotonic(), process_cpu_ns(pid) - cpu
        os.kill(pid, signal.SIGTERM)
        perf.wait(60)
    finally:
        if perf.poll() is None:  # the load failed: stop the server, then perf
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            perf.kill()
            perf.wait()
    return (cpu / done / 1e3, *attribute(data, start, end))


def report(server: Server, round_trips: int, repetitions: int, functions: int) -> None:
    print(
        f"{server.name}: server CPU µs per round trip, by whose code ran (median of {repetitions}):"
    )
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in server.modes}
    loop_samples = {mode: Counter[str]() for mode in server.modes}
    all_samples = Counter[str]()
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repetitions):
            for mode in server.modes:  # interleaved, as the benchmarks measure
                per_round_trip, groups, loop_functions = profile(server, mode, round_trips, scratch)
                samples = sum(groups.values()) or 1
                parts = {group: per_round_trip * groups[group] / samples for group in GROUPS}
                runs[mode].append({"total": per_round_trip, **parts})
                loop_samples[mode].update(loop_functions)
                all_samples[mode] += samples
    figures = {
        mode: {key: statistics.median(run[key] for run in runs[mode]) for key in runs[mode][0]}
        for mode in runs
    }
    for mode, parts in figures.items():
        shown = "  ".join(
            f"{group} {parts[group]:5.1f} ({parts[group] / parts['total']:4.0%})"
            for group in GROUPS
        )
        print(f"  {mode:>10}: {parts['total']:5.1f} = {shown}")
        per_sample = parts["total"] / all_samples[mode]
        for function, count in loop_samples[mode].most_common(functions):
            print(f"  {'':>10}    loop: {count * per_sample:4.2f} µs in {function}")
    native = figures[server.modes[0]]
    rest = native["total"] - native["loop"]
    for mode in server.modes[1:]:
        target = server.targets[mode]
        budget = native["total"] / target - rest
        print(
            f"  {mode:>10}: ratio {native['total'] / figures[mode]['total']:.2f}, "
            f"target {target}: with the rest costing what it does natively ({rest:.1f} µs), "
            f"the hub's loop may cost {budget:.1f} µs per round trip; it costs "
            f"{figures[mode]['loop']:.1f}, native's {native['loop']:.1f} (ceiling, a loop "
            f"costing nothing: {native['total'] / rest:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="*", default=list(SERVERS), help=f"of {list(SERVERS)}")
    parser.add_argument("--round-trips", type=int, default=30000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--functions", type=int, default=0, help="list the N costliest functions of each loop"
    )
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("perf is not installed")
    if sys.version_info < (3, 12):
        sys.exit("needs Python 3.12 or later (python -X perf)")
    for name in args.servers:
        report(SERVERS[name], args.round_trips, args.reps, args.functions)


if __name__ == "__main__":
    main()
