"""asyncore on the hub: one active connection beside idle ones, and 50 active connections.

The same echo server (``asyncore.dispatcher_with_send`` handlers) runs in
server processes side by side: ``asyncore.loop()`` (select), ``asyncore.loop(
use_poll=True)``, and the bridges hub on the stdlib loop and on uvloop; the
limits beside them are a plain asyncio echo with one ``add_reader`` per socket
and no framework (on the stdlib loop and on uvloop), and the same asyncore
handlers on plain ``add_reader`` with no hub ("asyncore's handlers on plain
add_reader", on both loops: what the handlers cost by themselves, the floor of
any driver).

* **idle**: each server holds N idle connections (0, 100, 1,000); one more
  connection does 64-byte ping-pong;
* **50 active**: a selectors-based client keeps 50 connections busy, each
  sending its next 64 bytes as soon as its echo came back.

The figure is the server's CPU time per round trip (``/proc/PID/task/*/
schedstat``), measured in turns (select, poll, hub, hub on uvloop, select, ...)
with client and servers on one CPU.  Every echo is checked.

Targets (docs/benchmarks.md): at 1,000 idle connections the hub serves at least 5x
asyncore's own loop, at least 0.9x the plain asyncio echo on the same loop, and
its cost per event does not grow with idle connections ("hub N vs hub 0" near
1.0); with 50 active connections at least 0.9x ``asyncore.loop()`` (1.0x on
uvloop).

Run: ``python benchmarks/bench_asyncore.py`` (about 60 s; ``--quick``: 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Iterator, Sequence

from _harness import Row, emit, keep_in_flight, parse_args, process_cpu_ns, summarise

PAYLOAD = 64
IDLE_COUNTS = (0, 100, 1000)
ACTIVE = 50
NATIVE = ("select", "poll")
HUBS = ("hub", "hub-uvloop")
LIMITS = {"hub": "asyncio", "hub-uvloop": "asyncio-uvloop"}
"""Each hub's limit: the plain asyncio echo on the same loop."""
FLOORS = {"hub": "handlers", "hub-uvloop": "handlers-uvloop"}
"""Each hub's floor: asyncore's handlers on plain add_reader on the same loop."""
MODES = (*NATIVE, "asyncio", "asyncio-uvloop", "handlers", "handlers-uvloop", *HUBS)
ACTIVE_TARGETS = {"hub": 0.9, "hub-uvloop": 1.0}
"""Issue 20: with 50 active connections, each hub's least speed ratio to ``asyncore.loop()``."""
IDLE_MODES = {0: (*NATIVE, "asyncio", *HUBS), 100: (*NATIVE, "asyncio", *HUBS), 1000: MODES}
"""The limits are measured where their targets are: at 1,000 idle connections."""


# -- the server side (runs in a child process) ---------------------------------


def serve(mode: str) -> None:
    """Run the echo server in ``mode``; print the port; run until killed."""
    _raise_fd_limit()
    if mode == "asyncio":
        asyncio.run(_add_reader_server())
        return
    if mode == "asyncio-uvloop":
        import uvloop

        uvloop.new_event_loop().run_until_complete(_add_reader_server())
        return
    if mode == "handlers":
        asyncio.run(_add_reader_handlers())
        return
    if mode == "handlers-uvloop":
        import uvloop

        uvloop.new_event_loop().run_until_complete(_add_reader_handlers())
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


def _make_server(added: Callable[[Any], None] | None = None) -> Any:
    """The echo server's dispatchers; ``added`` (when given) is told of each echo dispatcher."""
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
            echo = Echo(sock)
            if added is not None:
                added(echo)

    server = Server()
    print(server.socket.getsockname()[1], flush=True)
    return server


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


async def _add_reader_handlers() -> None:
    """asyncore's handlers on plain add_reader: the same dispatchers, the least driver.

    Each read event calls the dispatcher's ``handle_read_event()`` and asks it
    ``readable()``/``writable()`` again, as any driver of asyncore must; no map
    sweep, no error rules, no contexts, no accounting.
    """
    loop = asyncio.get_running_loop()

    def on_read(obj: Any, fd: int) -> None:
        obj.handle_read_event()
        if not obj.connected and not obj.accepting:
            loop.remove_reader(fd)
        elif not obj.readable() or obj.writable():
            raise AssertionError("the echo dispatcher changed its mind: this floor cannot follow")

    def add(obj: Any) -> None:
        loop.add_reader(obj.socket.fileno(), on_read, obj, obj.socket.fileno())

    server = _make_server(add)
    loop.add_reader(server.socket.fileno(), server.handle_read_event)
    await loop.create_future()


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- the client side --------------------------------------------------------------


def connect_busy(port: int, count: int) -> list[socket.socket]:
    """``count`` connections to the echo server on ``port``, for :func:`echo_busy`."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return socks


def echo_busy(socks: Sequence[socket.socket], per_connection: int, server: str) -> None:
    """Every connection keeps one 64-byte message in flight, ``per_connection`` times."""

    def check(fd: int, left: int, echo: bytes) -> None:
        if echo != _payload(fd, left):
            raise AssertionError(f"{server} echoed {echo!r}, not {_payload(fd, left)!r}")

    keep_in_flight(socks, per_connection, _payload, PAYLOAD, check, server)


class Server:
    """One server process, its N idle connections, its active one and its ``busy`` ones."""

    def __init__(self, mode: str, idle: int, busy: int = 0) -> None:
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
        self.busy = connect_busy(port, busy)

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

    def echo_busy(self, per_connection: int) -> None:
        echo_busy(self.busy, per_connection, f"{self.mode} server")

    def cpu_ns(self) -> int:
        return process_cpu_ns(self.proc.pid)

    def us_per_round_trip(self, count: int) -> float:
        before = self.cpu_ns()
        self.ping_pong(count)
        return (self.cpu_ns() - before) / count / 1e3

    def us_per_busy_round_trip(self, per_connection: int) -> float:
        before = self.cpu_ns()
        self.echo_busy(per_connection)
        return (self.cpu_ns() - before) / (per_connection * len(self.busy)) / 1e3

    def close(self) -> None:
        for sock in (*self.idle, self.active, *self.busy):
            sock.close()
        self.proc.kill()
        self.proc.wait()


def _payload(fd: int, left: int) -> bytes:
    """64 bytes that say which connection and which round trip they belong to."""
    return (fd.to_bytes(4, "big") + left.to_bytes(4, "big")) * (PAYLOAD // 8)


@contextlib.contextmanager
def servers(modes: Sequence[str], idle: int, busy: int = 0) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for mode in modes:
            started[mode] = Server(mode, idle, busy)
        yield started
    finally:
        for server in started.values():
            server.close()


_NAMES = {
    "select": "asyncore.loop()",
    "poll": "asyncore.loop(use_poll)",
    "asyncio": "plain asyncio add_reader",
    "asyncio-uvloop": "plain asyncio add_reader on uvloop",
    "handlers": "asyncore's handlers on plain add_reader",
    "handlers-uvloop": "asyncore's handlers on plain add_reader on uvloop",
}


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
    references = {mode: Server(mode, 0) for mode in HUBS}
    try:
        for idle in IDLE_COUNTS:
            rows.extend(measure_idle(idle, repetitions, args.quick, references))
    finally:
        for server in references.values():
            server.close()
    rows.extend(measure_active(repetitions, args.quick))
    emit(rows, args.report)
    print(f"({time.perf_counter() - started:.0f} s; server CPU per round trip, client excluded)")


def _row(
    case: str, samples: dict[str, list[float]], mode: str, baseline: str, target: float | None
) -> Row:
    return summarise(
        benchmark="asyncore",
        case=case,
        unit="µs CPU/rt",
        higher_is_better=False,
        baseline_name=baseline,
        baselines=samples[baseline],
        ours=samples[mode],
        target="" if target is None else f">= {target}x",
        target_ratio=target,
    )


def measure_idle(
    idle: int, repetitions: int, quick: bool, references: dict[str, Server]
) -> list[Row]:
    """One set of servers with ``idle`` idle connections each, measured in turns."""
    # Fewer round trips where asyncore's loop is slow, so each turn stays short.
    count = {0: 2000, 100: 1500, 1000: 600}[idle] // (3 if quick else 1)
    if idle == 0:
        references = {}  # the servers measured are the references
    modes = IDLE_MODES[idle]
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    for mode in references:
        samples[f"{mode} 0 idle"] = []
    with servers(modes, idle) as running:
        for server in (*running.values(), *references.values()):
            server.ping_pong(200)  # warm up
        for _ in range(repetitions):
            for mode in modes:
                samples[mode].append(running[mode].us_per_round_trip(count))
            for mode, server in references.items():
                samples[f"{mode} 0 idle"].append(server.us_per_round_trip(count))
    rows: list[Row] = []
    for mode in HUBS:
        for baseline in NATIVE:
            target = 5.0 if idle == 1000 else None
            rows.append(
                _row(f"{mode} vs {_NAMES[baseline]}, {idle} idle", samples, mode, baseline, target)
            )
        limit = LIMITS[mode]
        if limit in samples:
            rows.append(_row(f"{mode} vs {_NAMES[limit]}, {idle} idle", samples, mode, limit, 0.9))
        elif mode == "hub":
            rows.append(
                _row(f"{mode} vs {_NAMES['asyncio']}, {idle} idle", samples, mode, "asyncio", None)
            )
    rows.extend(_floor_rows(samples, f"{idle} idle"))
    for mode in references:
        row = _row(f"{mode}: {idle} idle vs 0 idle", samples, mode, f"{mode} 0 idle", 0.9)
        row.target = "cost does not grow (>= 0.9x)"
        rows.append(row)
    return rows


def _floor_rows(samples: dict[str, list[float]], case: str) -> list[Row]:
    """Each hub against its floor, and each floor against plain asyncio on the same loop."""
    rows: list[Row] = []
    for mode, floor in FLOORS.items():
        if floor in samples:
            limit = LIMITS[mode]
            rows.append(_row(f"{mode} vs {_NAMES[floor]}, {case}", samples, mode, floor, None))
            rows.append(
                _row(
                    f"{_NAMES[floor]} vs {_NAMES[limit]}, {case} (no hub: the floor)",
                    samples,
                    floor,
                    limit,
                    None,
                )
            )
    return rows


def measure_active(repetitions: int, quick: bool) -> list[Row]:
    """Servers with 50 busy connections each, measured in turns."""
    per_connection = 40 if quick else 100
    modes = (*NATIVE, "asyncio", "asyncio-uvloop", *FLOORS.values(), *HUBS)
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    with servers(modes, 0, ACTIVE) as running:
        for server in running.values():
            server.echo_busy(10)  # warm up
        for _ in range(repetitions):
            for mode in modes:
                samples[mode].append(running[mode].us_per_busy_round_trip(per_connection))
    rows: list[Row] = []
    for mode, target in ACTIVE_TARGETS.items():
        for baseline in NATIVE:
            rows.append(
                _row(
                    f"{mode} vs {_NAMES[baseline]}, {ACTIVE} active",
                    samples,
                    mode,
                    baseline,
                    target if baseline == "select" else None,
                )
            )
        limit = LIMITS[mode]
        rows.append(_row(f"{mode} vs {_NAMES[limit]}, {ACTIVE} active", samples, mode, limit, None))
    rows.extend(_floor_rows(samples, f"{ACTIVE} active"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main()
