"""A Tornado HTTP handler served on the hub vs plain Tornado, side by side in one run.

Two server processes run the same ``tornado.web`` application: one under
plain Tornado (``asyncio.run``, as a Tornado 6 program starts), one under
``bridges.run(..., frameworks=["tornado"])``.  This process is the client: one
keep-alive HTTP/1.1 connection, request/response ping-pong, every response
checked.  Requests alternate between the servers one by one, in rotating
order, so all see the same background load; per repetition, each server's CPU
time (from /proc/PID/task/*/schedstat) is divided by the requests it served.
Client and servers are pinned to one CPU, so the VM's cross-CPU wake-up
latency does not hide the servers' cost (docs/benchmarks.md, how the figures are measured).

Printed: each server's median CPU µs per request and requests/s, and the hub's
throughput ratio against plain Tornado (native CPU / hub CPU per request; 1.0
means equal, the target is >= 0.95), median and min-max over repetitions.

    python benchmarks/bench_tornado.py [--requests 600] [--reps 9] [--loop asyncio|uvloop]
                                       [--control]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _harness import add_report_options, emit, summarise

BODY = b"hello from tornado"

SERVER = textwrap.dedent(
    """
    import asyncio, socket, sys
    import tornado.httpserver, tornado.netutil, tornado.web

    mode, loop_name = sys.argv[1], sys.argv[2]

    class Hello(tornado.web.RequestHandler):
        async def get(self):
            self.write(BODY)

    async def main():
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Hello)]))
        server.add_sockets(sockets)
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    if mode == "hub":
        import bridges
        bridges.run(main, frameworks=["tornado"], loop_factory=loop_name)
    elif loop_name == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    """
).replace("BODY", repr(BODY))


class Server:
    """One server process; its CPU time is read from /proc between batches."""

    def __init__(self, mode: str, loop_name: str, cpu: int) -> None:
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, mode, loop_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        os.sched_setaffinity(self.process.pid, {cpu})
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def cpu_ns(self) -> int:
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue
        return total

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Client:
    """A blocking keep-alive HTTP/1.1 client that checks every response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        self.buffer = b""

    def get(self) -> None:
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"bad response: {lines[0]!r}")
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length")
        )
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if body != BODY:
            raise RuntimeError(f"bad body: {body!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def batch(
    servers: dict[str, Server], clients: dict[str, Client], requests: int
) -> dict[str, tuple[float, float]]:
    """Send ``requests`` requests to every server, interleaved one by one (A B, B A, ...).

    Interleaving single requests exposes every server to the same moments of
    the machine's background load, which batch-level alternation cannot do on
    a shared VM; rotating the order gives each server every position equally
    (with three servers, a fixed A B C / C B A order would never let B run
    twice in a row, always on a cache the others just used).  Returns, per
    server, (CPU µs per request, requests per second of its own requests' time).
    """
    modes = list(servers)
    cpu_before = {mode: servers[mode].cpu_ns() for mode in modes}
    spent = dict.fromkeys(modes, 0.0)
    clock = time.perf_counter
    for i in range(requests):
        shift = i % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            started = clock()
            clients[mode].get()
            spent[mode] += clock() - started
    return {
        mode: (
            (servers[mode].cpu_ns() - cpu_before[mode]) / requests / 1000,
            requests / spent[mode],
        )
        for mode in modes
    }


def measure(
    loop: str, requests: int, reps: int, control: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    """Server CPU µs per request and requests/s per mode, one figure per repetition."""
    modes = ["native", "hub"] + (["native-2"] if control else [])
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    servers = {mode: Server(mode.split("-")[0], loop, cpu) for mode in modes}
    clients = {mode: Client(server.port) for mode, server in servers.items()}
    try:
        batch(servers, clients, requests // 4)  # warm up: imports, first-request paths
        cpu_us: dict[str, list[float]] = {mode: [] for mode in servers}
        rates: dict[str, list[float]] = {mode: [] for mode in servers}
        for _ in range(reps):
            for mode, (per_request, rate) in batch(servers, clients, requests).items():
                cpu_us[mode].append(per_request)
                rates[mode].append(rate)
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.close()
    return cpu_us, rates, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    parser.add_argument(
        "--control",
        action="store_true",
        help="also run a second plain-Tornado server and print its ratio: the noise floor",
    )
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.reps = 200, 3
    rows = []
    for loop in ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]:
        cpu_us, rates, cpu = measure(loop, args.requests, args.reps, args.control)
        print(
            f"Tornado HTTP handler, 1 keep-alive connection per server, {args.requests} "
            f"requests per server x {args.reps} reps, interleaved, loop={loop}, all on CPU {cpu}"
        )
        for mode in cpu_us:
            print(
                f"  {mode:>8}: server CPU {statistics.median(cpu_us[mode]):6.1f} µs/request, "
                f"{statistics.median(rates[mode]):7.0f} requests/s (medians)"
            )
        rate_ratios = [h / n for n, h in zip(rates["native"], rates["hub"])]
        print(
            f"  hub/native requests/s (wall clock, includes the client): "
            f"{statistics.median(rate_ratios):.3f}x "
            f"(min {min(rate_ratios):.3f}, max {max(rate_ratios):.3f})"
        )
        if args.control:
            control = [n / c for n, c in zip(cpu_us["native"], cpu_us["native-2"])]
            print(
                f"  control, plain/plain by server CPU: {statistics.median(control):.3f}x "
                f"(min {min(control):.3f}, max {max(control):.3f}): the noise floor of this run"
            )
        rows.append(
            summarise(
                benchmark="tornado",
                case=f"HTTP handler, server CPU per request, {LOOP_NAMES[loop]}",
                unit="µs/request",
                higher_is_better=False,
                baseline_name="plain Tornado",
                baselines=cpu_us["native"],
                ours=cpu_us["hub"],
                target=">= 0.95x plain Tornado",
                target_ratio=0.95,
            )
        )
    emit(rows, args.report)


LOOP_NAMES = {"asyncio": "stdlib loop", "uvloop": "uvloop"}


if __name__ == "__main__":
    main()
