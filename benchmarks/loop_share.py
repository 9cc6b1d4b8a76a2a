"""Where a server's CPU goes, by whose code runs: the loop's, the framework's, the handler's (perf).

Usage::

    python benchmarks/loop_share.py                  # both servers, native and on the hub
    python benchmarks/loop_share.py gevent           # one server
    python benchmarks/loop_share.py asyncore --round-trips 20000 --functions 5

A benchmark's ratio says how much cheaper native is, not whether the hub
*could* match it: the framework's own code (gevent's sockets, asyncore's
dispatcher methods) and the handler are the same code on both, and the
loop is what differs.  This runs the servers of ``bench_gevent.py``
(``StreamServer`` echo, 50 connections, the benchmark's clients) and
``bench_asyncore.py`` (echo, 50 active connections kept open, as the
benchmark does) under Linux ``perf``, natively and on the hub on both
loops, and puts each CPU sample on the innermost Python function running
(``python -X perf`` names them in the samples; C code counts for the Python
function that called it, so libev's C counts for ``Hub.run``, a ``recv``
system call for the socket code).  The groups:

* **loop** — the event loop and its dispatch: gevent's ``Hub.run`` (libev's
  loop) and its Python loop backends, asyncore's module functions (``loop``,
  ``poll``, ``readwrite``, ...), asyncio, selectors, uvloop, and every
  ``bridges`` module;
* **framework** — the framework's other code: gevent's sockets, greenlets
  and events, asyncore's ``dispatcher`` methods;
* **handler** — the benchmark's server code;
* **other** — the rest (the standard library's socket module, ...);
* **unknown** — samples perf could not unwind to a Python frame (C code
  deep below one, mostly uvloop's: likely loop, counted apart).

Per server (medians of interleaved repetitions): its CPU per round trip
(``/proc/PID/schedstat``) and each group's part of it.  Per hub mode: the
**loop budget**, what the hub's loop and dispatch may cost per round trip
to meet the mode's target if everything else costs what it does natively,
next to what they cost (and what the hub's "everything else" costs), and
the **ceiling**, the ratio a loop costing nothing would reach.

Read the figures as estimates.  ``-X perf`` makes every Python-to-Python
call slower (about 40% for a trivial function on 3.13: the interpreter no
longer inlines them), so Python code is inflated against C: the totals run
10-20% above the benchmarks' own, and native's loop, mostly C, shows a
smaller share than it has.  The split is not quite like for like either:
natively, libev's watcher start and stop are C called from gevent's
compiled wait and count as framework; on the hub they are Python
(``_Io.start``/``_Io.stop``) and count as loop.

Needs ``perf`` (``perf_event_paranoid`` <= 2) and Python 3.12 or later
(``-X perf``), with the benchmark extras installed.  Takes one to two
minutes per server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

import bench_asyncore
import bench_gevent
from _harness import process_cpu_ns

GROUPS = ("loop", "framework", "handler", "other", "unknown")
_FRAME = re.compile(r"py::(?P<function>[^:]+):(?P<path>.*)\+0x[0-9a-f]+ \(")
_SAMPLE = re.compile(r"^\S.*?\s(?P<time>\d+\.\d+):")
_ASYNCORE_LOOP = {"loop", "poll", "poll2", "readwrite", "read", "write", "_exception"}


def _where(module: str) -> str:
    """Where ``module``'s code lives, without importing it: a package's directory
    (with a trailing separator) or a module's file; "" when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return ""
    if spec.submodule_search_locations:
        return os.path.join(os.path.realpath(next(iter(spec.submodule_search_locations))), "")
    return os.path.realpath(spec.origin or "")


_LOOP_CODE = tuple(filter(None, map(_where, ("bridges", "asyncio", "selectors", "uvloop"))))
_GEVENT = _where("gevent")
_GEVENT_LOOPS = tuple(os.path.join(_GEVENT, name, "") for name in ("libev", "libuv", "_ffi"))
_ASYNCORE = _where("asyncore")  # the stdlib's asyncore.py, or pyasyncore's package
_HANDLERS = {os.path.realpath(bench_gevent.__file__), os.path.realpath(bench_asyncore.__file__)}

Load = Callable[[int], int]
"""Runs about N round trips on open client connections; returns how many ran."""


@dataclass
class Server:
    """One server of a benchmark, as the benchmark runs it, and the load its clients put."""

    name: str
    argv: Callable[[str], list[str]]
    """The benchmark's ``--serve`` command line for a mode."""
    modes: tuple[str, ...]
    """Native first, then the hub's modes."""
    clients: Callable[[int], ContextManager[Load]]
    """Opens the clients on a port (before the measured window) and closes them after."""
    targets: dict[str, float]
    """Each hub mode's target: the least speed ratio, native CPU / the hub's."""


@contextlib.contextmanager
def _gevent_clients(port: int) -> Iterator[Load]:
    def load(round_trips: int) -> int:
        # bench_gevent's own clients, which connect in each run, as the benchmark measures
        rounds = max(1, round_trips // bench_gevent.CONNECTIONS)
        return asyncio.run(bench_gevent._echo_clients(port, rounds=rounds))

    yield load


@contextlib.contextmanager
def _asyncore_clients(port: int) -> Iterator[Load]:
    socks = bench_asyncore.connect_busy(port, bench_asyncore.ACTIVE)

    def load(round_trips: int) -> int:
        per_connection = max(1, round_trips // len(socks))
        bench_asyncore.echo_busy(socks, per_connection, "the asyncore server")
        return per_connection * len(socks)

    try:
        yield load
    finally:
        for sock in socks:
            sock.close()


SERVERS = {
    "gevent": Server(
        "gevent StreamServer echo, 50 connections",
        lambda mode: [bench_gevent.__file__, "--serve", mode, "echo"],
        ("native", "asyncio", "uvloop"),
        _gevent_clients,
        bench_gevent.SERVER_TARGETS["echo"],
    ),
    "asyncore": Server(
        "asyncore echo, 50 active connections",
        lambda mode: [bench_asyncore.__file__, "--serve", mode],
        ("select", "hub", "hub-uvloop"),
        _asyncore_clients,
        bench_asyncore.ACTIVE_TARGETS,
    ),
}


def group_of(function: str, path: str) -> str:
    """The group of a sample whose innermost Python function is ``function`` in ``path``."""
    path = os.path.realpath(path)
    if path in _HANDLERS:
        return "handler"
    if path.startswith(_LOOP_CODE):
        return "loop"
    if _GEVENT and path.startswith(_GEVENT):
        if path.startswith(_GEVENT_LOOPS) or (path.endswith("hub.py") and function == "Hub.run"):
            return "loop"
        return "framework"
    if _ASYNCORE and path.startswith(_ASYNCORE):
        return "loop" if function in _ASYNCORE_LOOP else "framework"
    return "other"


def attribute(perf_data: str, start: float, end: float) -> tuple[Counter[str], Counter[str]]:
    """Samples taken between ``start`` and ``end`` (``time.monotonic()``): by group, and the
    loop group's by function."""
    script = subprocess.run(["perf", "script", "-i", perf_data], capture_output=True, text=True)
    if script.returncode:
        raise RuntimeError(f"perf script failed: {script.stderr.strip()[-2000:]}")
    groups: Counter[str] = Counter()
    loop_functions: Counter[str] = Counter()
    for block in script.stdout.split("\n\n"):
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
    if sum(groups.values()) < 100:
        raise RuntimeError(
            f"perf took {sum(groups.values())} samples in the measured window: too few to "
            "share out (more --round-trips?)"
        )
    return groups, loop_functions


def _child_pid(perf: subprocess.Popen[str]) -> int:
    """The profiled server: perf's child process."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and perf.poll() is None:
        with open(f"/proc/{perf.pid}/task/{perf.pid}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise RuntimeError(f"perf started no server (perf's exit status: {perf.poll()})")


def profile(
    server: Server, mode: str, round_trips: int, scratch: str
) -> tuple[float, Counter[str], Counter[str]]:
    """Run ``server`` in ``mode`` under perf: CPU µs per round trip, and samples by group."""
    data = os.path.join(scratch, f"{mode}.data")
    command = ["perf", "record", "-q", "-F", "1999", "-k", "CLOCK_MONOTONIC"]
    command += ["--call-graph", "dwarf,16384", "-o", data, "--"]
    command += [sys.executable, "-X", "perf", *server.argv(mode)]
    # Its own session: whatever fails, the server and perf are stopped together.
    perf = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    pid = None
    try:
        assert perf.stdout is not None
        line = perf.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the {mode} server under perf printed no port ({line!r})")
        pid = _child_pid(perf)
        with server.clients(int(line)) as load:
            load(round_trips // 4)  # warm-up
            cpu, start = process_cpu_ns(pid), time.monotonic()
            done = load(round_trips)
            end, cpu = time.monotonic(), process_cpu_ns(pid) - cpu
        os.kill(pid, signal.SIGTERM)
        # perf record ends as its command did: by SIGTERM where the server has no handler.
        if perf.wait(60) not in (0, -signal.SIGTERM):
            raise RuntimeError(f"perf record exited with status {perf.returncode}")
        return (cpu / done / 1e3, *attribute(data, start, end))
    finally:
        if perf.poll() is None:
            os.killpg(perf.pid, signal.SIGKILL)
            perf.wait()
        perf.stdout.close()  # type: ignore[union-attr]
        if pid is not None:  # python -X perf's map of the server's functions
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"/tmp/perf-{pid}.map")


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
                samples = sum(groups.values())
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
        hub = figures[mode]
        target = server.targets[mode]
        budget = native["total"] / target - rest
        unknown = f" (+{hub['unknown']:.1f} unknown)" if hub["unknown"] >= 0.05 else ""
        print(
            f"  {mode:>10}: ratio {native['total'] / hub['total']:.2f}, target {target}: with "
            f"everything but the loop costing what it does natively ({rest:.1f} µs; on the hub "
            f"{hub['total'] - hub['loop'] - hub['unknown']:.1f}), the hub's loop may cost "
            f"{budget:.1f} µs per round trip; it costs {hub['loop']:.1f}{unknown}, native's "
            f"{native['loop']:.1f} (ceiling, a loop costing nothing: {native['total'] / rest:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="*", default=list(SERVERS), help=f"of {list(SERVERS)}")
    parser.add_argument("--round-trips", type=int, default=40000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--functions", type=int, default=0, help="list the N costliest functions of each loop"
    )
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("perf is not installed")
    if sys.version_info < (3, 12):
        sys.exit("needs Python 3.12 or later (python -X perf)")
    if args.reps < 1 or args.round_trips < 1000:
        sys.exit("needs --reps >= 1 and --round-trips >= 1000")
    for name in args.servers:
        report(SERVERS[name], args.round_trips, args.reps, args.functions)


if __name__ == "__main__":
    main()
