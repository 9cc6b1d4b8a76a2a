"""asyncore on the hub: one active connection beside 0, 100 and 1,000 idle ones.

The same echo server (``asyncore.dispatcher_with_send`` handlers) runs in four
server processes side by side: ``asyncore.loop()`` (select), ``asyncore.loop(
use_poll=True)``, and the bridges hub on the stdlib loop and on uvloop.  Each
server holds N idle connections; one more connection does 64-byte ping-pong.
The figure is the server's CPU time per round trip (``/proc/PID/task/*/
schedstat``), measured in turns (select, poll, hub, hub on uvloop, select, ...)
with client and servers on one CPU.  Every echo is checked.

Targets (docs/benchmarks.md): at 1,000 idle connections the hub serves at least 5x
asyncore's own loop, and its cost per event does not grow with idle
connections ("hub N vs hub 0" near 1.0).

Run: ``python benchmarks/bench_asyncore.py`` (about 40 s; ``--quick``: 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Iterator

from _harness import Row, emit, parse_args, process_cpu_ns

PAYLOAD = 64
IDLE_COUNTS = (0, 100, 1000)
MODES = ("select", "poll", "asyncio", "hub", "hub-uvloop")


# -- the server side (runs in a child process) ---------------------------------


def serve(mode: str) -> None:
    """Run the echo server in ``mode``; print the port; run until killed."""
    _raise_fd_limit()
    if mode == "asyncio":
        asyncio.run(_add_reader_server())
        return
    if mode.startswith("hub"):
        import bridges
        from bridges import asyncore as ba

        async def main() -> None:
            _make_server()
            await ba.loop()

        loop_factory = "uvloop" if mode == "hub-uvloop" else None
        bridges.run(main, frameworks=["asyncore"], loop_factory=loop_factory)
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
    _make_server()
    asyncore.loop(timeout=30.0, use_poll=(mode == "poll"))


def _make_server() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore

    class Echo(asyncore.dispatcher_with_send):
        def handle_read(self) -> None:
            data = self.recv(8192)
            if data:
                self.send(data)

    class Server(asyncore.dispatcher):
        def __init__(self) -> None:
            super().__init__()
            self.create_socket()
            self.set_reuse_addr()
            self.bind(("127.0.0.1", 0))
            self.listen(4096)

        def handle_accepted(self, sock: socket.socket, addr: object) -> None:
            Echo(sock)

    server = Server()
    print(server.socket.getsockname()[1], flush=True)


async def _add_reader_server() -> None:
    """The floor: a plain asyncio server with one add_reader per socket and no framework."""
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.setblocking(False)

    def echo(conn: socket.socket) -> None:
        try:
            data = conn.recv(8192)
        except BlockingIOError:
            return
        if data:
            conn.send(data)
        else:
            loop.remove_reader(conn.fileno())
            conn.close()

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        loop.add_reader(conn.fileno(), echo, conn)

    loop.add_reader(listener.fileno(), accept)
    print(listener.getsockname()[1], flush=True)
    await loop.create_future()


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- the client side --------------------------------------------------------------


class Server:
    """One server process, its N idle connections and its active one."""

    def __init__(self, mode: str, idle: int) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        self.idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
        self.active = socket.create_connection(("127.0.0.1", port))
        self.active.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ping_pong(10)  # accepted in order: the idle ones are in the server's map too

    def ping_pong(self, count: int) -> None:
        sock = self.active
        for i in range(count):
            payload = i.to_bytes(4, "big") * (PAYLOAD // 4)
            sock.sendall(payload)
            got = b""
            while len(got) < PAYLOAD:
                chunk = sock.recv(PAYLOAD - len(got))
                if not chunk:
                    raise AssertionError(f"{self.mode} server closed the connection")
                got += chunk
            if got != payload:
                raise AssertionError(f"{self.mode} server echoed {got!r}, not {payload!r}")

    def cpu_ns(self) -> int:
        return process_cpu_ns(self.proc.pid)

    def us_per_round_trip(self, count: int) -> float:
        before = self.cpu_ns()
        self.ping_pong(count)
        return (self.cpu_ns() - before) / count / 1e3

    def close(self) -> None:
        for sock in (*self.idle, self.active):
            sock.close()
        self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def servers(idle: int) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for mode in MODES:
            started[mode] = Server(mode, idle)
        yield started
    finally:
        for server in started.values():
            server.close()


_NAMES = {
    "select": "asyncore.loop()",
    "poll": "asyncore.loop(use_poll)",
    "asyncio": "plain asyncio add_reader",
}


def _summary(ratios: list[float]) -> tuple[float, float, float]:
    return statistics.median(ratios), min(ratios), max(ratios)


def main() -> None:
    args = parse_args(__doc__ or "")
    _raise_fd_limit()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # children inherit it
    repetitions = 3 if args.quick else 7
    rows: list[Row] = []
    started = time.perf_counter()
    # Hub servers with no idle connections live through every turn, so that
    # "hub at N idle vs hub at 0 idle" is measured side by side too.
    references = {mode: Server(mode, 0) for mode in ("hub", "hub-uvloop")}
    try:
        for idle in IDLE_COUNTS:
            rows.extend(measure(idle, repetitions, args.quick, references))
    finally:
        for server in references.values():
            server.close()
    emit(rows, args.report)
    print(f"({time.perf_counter() - started:.0f} s; server CPU per round trip, client excluded)")


def measure(idle: int, repetitions: int, quick: bool, references: dict[str, Server]) -> list[Row]:
    """One set of servers with ``idle`` idle connections each, measured in turns."""
    # Fewer round trips where asyncore's loop is slow, so each turn stays short.
    count = {0: 2000, 100: 1500, 1000: 600}[idle] // (3 if quick else 1)
    if idle == 0:
        references = {}  # the servers measured are the references
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    zero: dict[str, list[float]] = {mode: [] for mode in references}
    rows: list[Row] = []
    with servers(idle) as running:
        for server in (*running.values(), *references.values()):
            server.ping_pong(200)  # warm up
        for _ in range(repetitions):
            for mode in MODES:
                samples[mode].append(running[mode].us_per_round_trip(count))
            for mode, server in references.items():
                zero[mode].append(server.us_per_round_trip(count))
    for mode in ("hub", "hub-uvloop"):
        for baseline in ("select", "poll", "asyncio"):
            ratio, low, high = _summary([b / m for b, m in zip(samples[baseline], samples[mode])])
            target = idle == 1000 and baseline != "asyncio"
            rows.append(
                Row(
                    benchmark="asyncore",
                    case=f"{mode} vs {_NAMES[baseline]}, {idle} idle",
                    unit="µs CPU/rt",
                    higher_is_better=False,
                    ours=statistics.median(samples[mode]),
                    baseline=statistics.median(samples[baseline]),
                    baseline_name=baseline,
                    ratio=ratio,
                    ratio_min=low,
                    ratio_max=high,
                    target=">= 5x at 1,000 idle" if target else "",
                    meets_target=(ratio >= 5.0) if target else None,
                    target_ratio=5.0 if target else None,
                )
            )
    for mode, base in zero.items():
        ratio, low, high = _summary([b / m for b, m in zip(base, samples[mode])])
        rows.append(
            Row(
                benchmark="asyncore",
                case=f"{mode}: {idle} idle vs 0 idle",
                unit="µs CPU/rt",
                higher_is_better=False,
                ours=statistics.median(samples[mode]),
                baseline=statistics.median(base),
                baseline_name=f"{mode} 0 idle",
                ratio=ratio,
                ratio_min=low,
                ratio_max=high,
                target="cost does not grow (>= 0.9x)",
                meets_target=ratio >= 0.9,
                target_ratio=0.9,
            )
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main()
