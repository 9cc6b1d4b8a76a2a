"""waitress on the hub against waitress's own loop: latency at one client, CPU at 50.

The same WSGI app (a fixed 64-byte body) is served by three server processes
side by side: waitress as ``waitress.serve`` runs it (its own ``wasyncore``
loop, the baseline), and the hub driving waitress through bridges.asyncore,
once with waitress's default plain-dict map and once with a ``ba.SocketMap``.
Every server uses 4 worker threads, as ``waitress.serve`` does by default.

* **latency**: one keep-alive HTTP/1.1 client, requests one after another;
  the figure is the median wall time of a request (the target: within 0.1 ms
  of native);
* **CPU**: 50 keep-alive clients, each sending its next request as soon as
  its response arrived; the figure is the server's CPU time per request
  (``/proc/PID/task/*/schedstat``, every thread), target at most 1.0x native.

Turns are interleaved (native, hub-dict, hub-map, native, ...), client and
servers pinned to one CPU, every response checked.

Run: ``python benchmarks/bench_waitress.py`` (about 40 s; ``--quick``: 15 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Iterator

from _harness import Row, emit, keep_in_flight, parse_args, process_cpu_ns, summarise

BODY = b"x" * 64
MODES = ("native", "hub-dict", "hub-map")
NAMES = {
    "native": "waitress.serve",
    "hub-dict": "hub, waitress's dict map",
    "hub-map": "hub, ba.SocketMap",
}
CLIENTS = 50
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


# -- the server side (runs in a child process) ---------------------------------


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def serve(mode: str) -> None:
    """Run the server in ``mode``; print the port; run until killed."""
    import logging

    from waitress.server import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" at 50 clients

    if mode == "native":
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        print(server.effective_port, flush=True)
        server.run()
        return
    import bridges
    from bridges import asyncore as ba

    async def main() -> None:
        socket_map = ba.SocketMap() if mode == "hub-map" else None
        server = create_server(app, host="127.0.0.1", port=0, threads=4, map=socket_map)
        print(server.effective_port, flush=True)
        await ba.closed(server)

    bridges.run(main, frameworks=["asyncore"])


# -- the client side --------------------------------------------------------------


class Server:
    """One server process and the size of its (constant) response."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.one = self.connect()
        self.response_size = self._first_response_size()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _first_response_size(self) -> int:
        self.one.sendall(REQUEST)
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(BODY):
            chunk = self.one.recv(65536)
            if not chunk:
                raise AssertionError(f"{self.mode} server closed the connection")
            got += chunk
        return len(got)

    def request(self, sock: socket.socket) -> None:
        sock.sendall(REQUEST)
        self._read_response(sock)

    def _read_response(self, sock: socket.socket) -> None:
        left = self.response_size
        last = b""
        while left:
            last = sock.recv(left)
            if not last:
                raise AssertionError(f"{self.mode} server closed the connection")
            left -= len(last)
        if not last.endswith(BODY[-8:]):
            raise AssertionError(f"{self.mode} server sent a response not ending in the body")

    def latency_ms(self, count: int) -> float:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            self.request(self.one)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e3

    def cpu_ns(self) -> int:
        return process_cpu_ns(self.proc.pid)

    def us_per_request(self, clients: list[socket.socket], per_client: int) -> float:
        before = self.cpu_ns()
        self.concurrent(clients, per_client)
        return (self.cpu_ns() - before) / (len(clients) * per_client) / 1e3

    def concurrent(self, clients: list[socket.socket], per_client: int) -> None:
        """Every client keeps one request in flight until it made ``per_client``."""
        keep_in_flight(
            clients,
            per_client,
            lambda fd, left: REQUEST,
            self.response_size,
            self._check_response,
            f"{self.mode} server",
        )

    def _check_response(self, fd: int, left: int, response: bytes) -> None:
        if not response.startswith(b"HTTP/1.1 200 ") or not response.endswith(BODY):
            raise AssertionError(f"{self.mode} server answered {response!r}")

    def close(self) -> None:
        self.one.close()
        self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def servers() -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for mode in MODES:
            started[mode] = Server(mode)
        yield started
    finally:
        for server in started.values():
            server.close()


def main() -> None:
    args = parse_args(__doc__ or "")
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # children inherit it
    repetitions = 3 if args.quick else 7
    one_client = 300 if args.quick else 1000
    per_client = 20 if args.quick else 60
    began = time.perf_counter()
    latency: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    with servers() as running:
        clients = {
            mode: [server.connect() for _ in range(CLIENTS)] for mode, server in running.items()
        }
        try:
            for mode, server in running.items():  # warm up
                server.latency_ms(100)
                server.concurrent(clients[mode], 5)
            for _ in range(repetitions):
                for mode, server in running.items():
                    latency[mode].append(server.latency_ms(one_client))
                for mode, server in running.items():
                    cpu[mode].append(server.us_per_request(clients[mode], per_client))
        finally:
            for socks in clients.values():
                for sock in socks:
                    sock.close()
    cases = (
        ("latency, 1 client", "ms/request", latency, "within 0.1 ms of native", None),
        (f"CPU, {CLIENTS} keep-alive clients", "µs CPU/req", cpu, "<= 1.0x native CPU", 1.0),
    )
    rows: list[Row] = []
    for mode in MODES[1:]:
        for what, unit, samples, target, target_ratio in cases:
            row = summarise(
                benchmark="waitress",
                case=f"{NAMES[mode]}: {what}",
                unit=unit,
                higher_is_better=False,
                baseline_name=NAMES["native"],
                baselines=samples["native"],
                ours=samples[mode],
                target=target,
                target_ratio=target_ratio,
            )
            if samples is latency:  # an absolute target: 0.1 ms more at most
                row.meets_target = row.ours - row.baseline <= 0.1
            rows.append(row)
    emit(rows, args.report)
    print(f"({time.perf_counter() - began:.0f} s; server CPU includes waitress's worker threads)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main()
