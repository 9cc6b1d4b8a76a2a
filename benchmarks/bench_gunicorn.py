"""Hub workers under a real gunicorn master: scale-out, and the cost beside gunicorn's gevent.

Usage::

    python benchmarks/bench_gunicorn.py            # about 2 min
    python benchmarks/bench_gunicorn.py --quick

Rows (each interleaved: baseline, candidate, baseline, ... on servers started
once and kept running; the ratio is the median of per-repetition ratios):

* **scale-out**: ``-w 2`` vs ``-w 1`` hub workers (gevent attached, pywsgi
  greenlets), requests/s on a view that burns about 1 ms of CPU, so that the
  load generator (on the same 2 cores) costs little beside the servers.
  Baseline: 1 hub worker.  Target: >= 1.6x.  Beside it, the workers' CPU
  time per request: about the same for 2 workers as for 1 means requests/s
  scales with the cores the workers get (steady on a busy machine, where
  requests/s cannot show it).
* **vs -k gevent**: one hub worker vs one stock ``gunicorn -k gevent`` worker
  (gunicorn's HTTP parser on libev) and one ``-k gevent_pywsgi`` worker
  (gevent's pywsgi on libev: the same HTTP code as the hub worker's), on the
  same plain WSGI app: requests/s and the worker process's CPU time per
  request (``/proc/PID/schedstat``, steadier than requests/s on a shared
  machine).  Target: >= 0.9x.

The load generator is one asyncio process with keep-alive connections; every
response is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from _harness import Row, emit, parse_args, summarise
from bench_gevent import _cpu_ns as cpu_ns

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPS = 5
SECONDS = 2.0
WARM_UP = 0.5
BODY = b"hello from a worker"
BURN = 20_000  # iterations of the CPU-bound view: about 1 ms on a quiet core


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The plain WSGI app every server runs; ``/burn`` spends ~1 ms of CPU first."""
    if environ["PATH_INFO"] == "/burn":
        total = 0
        for i in range(BURN):
            total += i * i
    headers = [("Content-Length", str(len(BODY))), ("X-Worker", str(os.getpid()))]
    start_response("200 OK", headers)
    return [BODY]


class Server:
    """A gunicorn master running ``bench_gunicorn:app``; its port and worker pids."""

    def __init__(self, name: str, worker_class: str, workers: int) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(suffix=".log")  # noqa: SIM115 - closed in close()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
        env["BRIDGES_FRAMEWORKS"] = "gevent"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                worker_class,
                "-w",
                str(workers),
                "-b",
                "127.0.0.1:0",
                "--log-level",
                "info",
                *_control_socket_args(),
                "--worker-connections",
                "1000",
                "bench_gunicorn:app",
            ],
            cwd=HERE,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.port = int(self._wait(r"Listening at: http://127\.0\.0\.1:(\d+)", 1)[0])
        self.pids = [int(pid) for pid in self._wait(r"Booting worker with pid: (\d+)", workers)]
        self._wait(r"(Hub worker serving|Booting worker)", workers)
        time.sleep(1.0)  # workers import the app after the "Booting" line

    def _wait(self, pattern: str, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text(errors="replace")
            found = re.findall(pattern, text)
            if len(found) >= count:
                return found[:count] if isinstance(found[0], str) else found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.name}: no {count} x {pattern!r}:\n{Path(self.log.name).read_text()}"
        )

    def cpu_ns(self) -> int:
        return sum(cpu_ns(pid) for pid in self.pids)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log.close()


def _control_socket_args() -> list[str]:
    from gunicorn.config import KNOWN_SETTINGS

    return (
        ["--no-control-socket"]
        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)
        else []
    )


async def _load(port: int, path: str, connections: int, seconds: float) -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    deadline = asyncio.get_running_loop().time() + seconds

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise AssertionError(f"bad response {head!r}")
            found = re.search(rb"(?i)content-length: *(\d+)", head)
            if found is None or await reader.readexactly(int(found.group(1))) != BODY:
                raise AssertionError(f"bad response {head!r}")
            done += 1
        writer.close()
        return done

    return sum(await asyncio.gather(*(one() for _ in range(connections))))


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


def measure(server: Server, path: str, connections: int) -> tuple[float, float]:
    """Requests/s, and the workers' CPU µs per request, over SECONDS of load."""
    loop = _new_loop()
    try:
        loop.run_until_complete(_load(server.port, path, connections, WARM_UP))
        cpu = server.cpu_ns()
        started = time.perf_counter()
        count = loop.run_until_complete(_load(server.port, path, connections, SECONDS))
        elapsed = time.perf_counter() - started
        cpu = server.cpu_ns() - cpu
    finally:
        loop.close()
    return count / elapsed, cpu / 1000 / count


@contextlib.contextmanager
def servers(*specs: tuple[str, str, int]) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for spec in specs:
            started.append(Server(*spec))
        yield started
    finally:
        for server in started:
            server.close()


def bench_scale_out() -> list[Row]:
    with servers(
        ("1 hub worker", "bridges.gunicorn.HubWorker", 1),
        ("2 hub workers", "bridges.gunicorn.HubWorker", 2),
    ) as (one, two):
        baselines, ours = [], []
        for _ in range(REPS):
            baselines.append(measure(one, "/burn", 16))
            ours.append(measure(two, "/burn", 16))
    common = {"benchmark": "gunicorn", "baseline_name": "1 hub worker"}
    return [
        summarise(
            **common,
            case="scale-out: -w 2 vs -w 1 hub workers, ~1 ms CPU view",
            unit="requests/s",
            higher_is_better=True,
            baselines=[rps for rps, _ in baselines],
            ours=[rps for rps, _ in ours],
            target=">= 1.6x one worker",
            target_ratio=1.6,
        ),
        # Steady on a busy machine: if two workers spend what one does per request,
        # requests/s scales with the cores they get.
        summarise(
            **common,
            case="scale-out: -w 2 vs -w 1, workers' CPU per request",
            unit="µs/request",
            higher_is_better=False,
            baselines=[cpu for _, cpu in baselines],
            ours=[cpu for _, cpu in ours],
        ),
    ]


def bench_vs_stock_gevent() -> list[Row]:
    stock_classes = ("gevent", "gevent_pywsgi")
    with servers(
        *((f"gunicorn -k {name}", name, 1) for name in stock_classes),
        ("hub worker", "bridges.gunicorn.HubWorker", 1),
    ) as started:
        *stock, hub = started
        figures: dict[str, list[tuple[float, float]]] = {s.name: [] for s in started}
        for _ in range(REPS):
            for server in (*stock, hub):
                figures[server.name].append(measure(server, "/", 20))
    rows = []
    for baseline in stock:
        for case, unit, higher, pick in (
            ("20 keep-alive conns", "requests/s", True, 0),
            ("worker CPU", "µs/request", False, 1),
        ):
            rows.append(
                summarise(
                    benchmark="gunicorn",
                    case=f"hub worker vs {baseline.name.split()[1]} {baseline.name.split()[2]}"
                    f", plain WSGI app, {case}",
                    unit=unit,
                    higher_is_better=higher,
                    baseline_name=baseline.name,
                    baselines=[f[pick] for f in figures[baseline.name]],
                    ours=[f[pick] for f in figures[hub.name]],
                    target=">= 0.9x",
                    target_ratio=0.9,
                )
            )
    return rows


def main(argv: list[str]) -> None:
    global REPS, SECONDS
    args = parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        REPS, SECONDS = 3, 1.0
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {REPS} interleaved repetitions"
    )
    rows = [*bench_scale_out(), *bench_vs_stock_gevent()]
    emit(rows, args.report)


if __name__ == "__main__":
    main(sys.argv[1:])
