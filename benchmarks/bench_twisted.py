"""Twisted on the hub vs Twisted's epoll reactor vs the stock asyncio reactor.

    cd benchmarks && python bench_twisted.py [--reps 3] [--quick] [--report F]

Three measurements, each run for every reactor, interleaved (A B C A B C ...),
ratios taken against the epoll reactor of the *same* repetition:

* ping-pong, 1 connection: a blocking Python client sends 64 bytes and waits
  for the echo; client and server are pinned to the same CPU (across CPUs the
  VM's wake-up latency hides every difference).  Reported: round trips/s and
  the server's CPU µs per round trip (from /proc/PID/task/*/schedstat).
* echo, 50 connections: a selectors-based client keeps 50 connections busy,
  each with one 64-byte message in flight; server pinned to one CPU, client to
  the other.  Reported: server CPU µs per round trip (the client is Python
  too and is often the limit for round trips/s).
* a callLater(0) chain: calls/s inside one reactor.

Every echoed payload is checked.  Each server is a fresh process (the reactor
is process-global).  Reactors: ``epoll`` (Twisted's EPollReactor),
``stock`` / ``stock-uvloop`` (``AsyncioSelectorReactor``), ``hub`` /
``hub-uvloop`` (bridges' reactor under ``bridges.run``).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

from _harness import Row, emit

KINDS = ["epoll", "stock", "hub", "stock-uvloop", "hub-uvloop"]
PAYLOAD = 64
ALL_CPUS = os.sched_getaffinity(0)


# -- the server side (runs in a child process) ---------------------------------------


def _echo_factory() -> Any:
    from twisted.internet import protocol

    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    return protocol.Factory.forProtocol(Echo)


def _chain(reactor: Any, n: int, done: Callable[[], None]) -> None:
    count = 0

    def step() -> None:
        nonlocal count
        count += 1
        if count < n:
            reactor.callLater(0, step)
        else:
            done()

    reactor.callLater(0, step)


def _stock_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind.endswith("uvloop"):
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def child(kind: str, mode: str, n: int) -> None:
    """``mode`` is ``serve`` (print the port, echo until killed) or ``chain`` (print seconds)."""
    if kind.startswith("hub"):
        import bridges

        async def main() -> None:
            from twisted.internet import reactor
            from twisted.internet.defer import Deferred

            if mode == "serve":
                port = reactor.listenTCP(0, _echo_factory(), interface="127.0.0.1")
                print(port.getHost().port, flush=True)
                await asyncio.Event().wait()
            else:
                finished: Deferred[None] = Deferred()
                start = time.perf_counter()
                _chain(reactor, n, lambda: finished.callback(None))
                await bridges.awaitable(finished)
                print(time.perf_counter() - start, flush=True)

        bridges.run(
            main,
            frameworks=["twisted"],
            loop_factory="uvloop" if kind.endswith("uvloop") else None,
        )
        return
    if kind == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    else:
        from twisted.internet import asyncioreactor

        asyncioreactor.install(_stock_loop(kind))
    from twisted.internet import reactor

    if mode == "serve":
        port = reactor.listenTCP(0, _echo_factory(), interface="127.0.0.1")
        print(port.getHost().port, flush=True)
        reactor.run()
    else:
        times: list[float] = []

        def begin() -> None:
            times.append(time.perf_counter())
            _chain(reactor, n, lambda: (times.append(time.perf_counter()), reactor.stop()))

        reactor.callWhenRunning(begin)
        reactor.run()
        print(times[1] - times[0], flush=True)


# -- the client side (the driver process) ----------------------------------------------


def server_cpu_ns(pid: int) -> int:
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as handle:
                total += int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def spawn(kind: str, mode: str, n: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", kind, mode, str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )


def ping_pong(port: int, pid: int, round_trips: int) -> tuple[float, float]:
    """One connection, client and server on CPU 0; returns (round trips/s, server µs/rt)."""
    cpu = min(ALL_CPUS)
    os.sched_setaffinity(0, {cpu})
    os.sched_setaffinity(pid, {cpu})
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"p" * PAYLOAD

    def exchange(count: int) -> None:
        for i in range(count):
            message = i.to_bytes(4, "big") + payload[4:]
            sock.sendall(message)
            got = b""
            while len(got) < PAYLOAD:
                chunk = sock.recv(PAYLOAD - len(got))
                if not chunk:
                    raise RuntimeError("server closed the connection")
                got += chunk
            if got != message:
                raise RuntimeError(f"echo mismatch: {got!r}")

    exchange(300)  # warm-up
    cpu0, t0 = server_cpu_ns(pid), time.perf_counter()
    exchange(round_trips)
    elapsed, cpu = time.perf_counter() - t0, server_cpu_ns(pid) - cpu0
    sock.close()
    return round_trips / elapsed, cpu / round_trips / 1000


def echo_many(port: int, pid: int, connections: int, round_trips: int) -> tuple[float, float]:
    """Many connections, one message in flight each; returns (round trips/s, server µs/rt)."""
    cpus = sorted(ALL_CPUS)
    os.sched_setaffinity(pid, {cpus[0]})
    os.sched_setaffinity(0, {cpus[-1]})
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
    buffers = dict.fromkeys(socks, b"")
    sent = dict.fromkeys(socks, b"")

    def run(total: int) -> None:
        done = 0
        started = 0
        for i, sock in enumerate(socks):
            message = (f"{i:08d}:{started:012d}".encode()).ljust(PAYLOAD, b".")
            sent[sock] = message
            sock.send(message)
            started += 1
            selector.register(sock, selectors.EVENT_READ)
        while done < total:
            for key, _ in selector.select(5):
                sock = key.fileobj
                chunk = sock.recv(PAYLOAD * 2)  # type: ignore[union-attr]
                if not chunk:
                    raise RuntimeError("server closed a connection")
                buffers[sock] += chunk  # type: ignore[index]
                if len(buffers[sock]) < PAYLOAD:  # type: ignore[index]
                    continue
                if buffers[sock] != sent[sock]:  # type: ignore[index]
                    raise RuntimeError("echo mismatch")
                buffers[sock] = b""  # type: ignore[index]
                done += 1
                if started < total:
                    message = (f"{started:021d}".encode()).ljust(PAYLOAD, b".")
                    sent[sock] = message  # type: ignore[index]
                    sock.send(message)  # type: ignore[union-attr]
                    started += 1
                else:
                    selector.unregister(sock)  # its last message came back

    run(connections * 10)  # warm-up
    cpu0, t0 = server_cpu_ns(pid), time.perf_counter()
    run(round_trips)
    elapsed, cpu = time.perf_counter() - t0, server_cpu_ns(pid) - cpu0
    for sock in socks:
        sock.close()
    return round_trips / elapsed, cpu / round_trips / 1000


def measure_server(kind: str, args: argparse.Namespace) -> dict[str, float]:
    proc = spawn(kind, "serve")
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        rps1, cpu1 = ping_pong(port, proc.pid, args.round_trips)
        rps50, cpu50 = echo_many(port, proc.pid, 50, args.round_trips * 2)
    finally:
        proc.kill()
        proc.wait()
        os.sched_setaffinity(0, ALL_CPUS)
    return {"pp1_rps": rps1, "pp1_cpu": cpu1, "echo50_rps": rps50, "echo50_cpu": cpu50}


def measure_chain(kind: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "chain", str(n)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return n / float(out.strip().splitlines()[-1])


METRICS = [
    # key, title, unit, higher is better
    ("pp1_cpu", "ping-pong 1 conn, server CPU", "us/round trip", False),
    ("pp1_rps", "ping-pong 1 conn, throughput", "round trips/s", True),
    ("echo50_cpu", "echo 50 conns, server CPU", "us/round trip", False),
    ("echo50_rps", "echo 50 conns, throughput", "round trips/s", True),
    ("chain", "callLater(0) chain", "calls/s", True),
]
# The targets (docs/benchmarks.md) for the hub's reactor: ping-pong >= 0.8x epoll on the
# stdlib loop and >= 1.0x on uvloop (judged on the server's CPU per round trip,
# the steady figure); the callLater(0) chain >= 0.8x.
TARGETS = {
    ("hub", "pp1_cpu"): 0.8,
    ("hub", "echo50_cpu"): 0.8,
    ("hub-uvloop", "pp1_cpu"): 1.0,
    ("hub-uvloop", "echo50_cpu"): 1.0,
    ("hub", "chain"): 0.8,
    ("hub-uvloop", "chain"): 0.8,
}


def rows(results: dict[str, list[dict[str, float]]], kinds: list[str]) -> list[Row]:
    out = []
    for key, title, unit, higher_is_better in METRICS:
        base_values = [row[key] for row in results["epoll"]]
        for kind in kinds:
            if kind == "epoll":
                continue
            values = [row[key] for row in results[kind]]
            ratios = [
                (mine / base) if higher_is_better else (base / mine)
                for mine, base in zip(values, base_values)
            ]
            target = TARGETS.get((kind, key))
            ratio = statistics.median(ratios)
            out.append(
                Row(
                    benchmark="twisted",
                    case=f"{title}, {kind}",
                    unit=unit,
                    higher_is_better=higher_is_better,
                    ours=statistics.median(values),
                    baseline=statistics.median(base_values),
                    baseline_name="epoll reactor",
                    ratio=ratio,
                    ratio_min=min(ratios),
                    ratio_max=max(ratios),
                    target=f">= {target}x epoll" if target else "",
                    meets_target=None if target is None else ratio >= target,
                    target_ratio=target,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--chain", type=int, default=50_000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--report", help="write the result rows to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.round_trips, args.chain = 2, 1500, 30_000
    kinds = args.kinds.split(",")
    if "epoll" not in kinds:
        kinds.insert(0, "epoll")
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for rep in range(args.reps):
        for kind in kinds if rep % 2 == 0 else list(reversed(kinds)):
            row = measure_server(kind, args)
            row["chain"] = measure_chain(kind, args.chain)
            results[kind].append(row)
        print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)
    print(
        f"Python {sys.version.split()[0]}, {args.reps} interleaved repetitions; "
        "ratio > 1 means faster than Twisted's epoll reactor"
    )
    emit(rows(results, kinds), args.report)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
