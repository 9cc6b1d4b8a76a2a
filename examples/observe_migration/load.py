"""The demo service under load while its traffic moves to asyncio: the migration, measured.

Runs the mixed-framework demo service (``python -m bridges demo``: a Tornado
app, a Twisted site, a gevent WSGI app and an asynchat service on one loop)
plus one endpoint already moved to plain asyncio, and sends it load from
client threads for ``--seconds``.  Over the run the traffic shifts from the
legacy endpoints (Twisted, gevent, asyncore) to the asyncio one, as it does
while a team moves handlers one by one; a few ``GET /chain`` requests cross
every framework throughout.  The hub's accounting is dumped every
``--interval`` seconds (``bridges.metrics.dump_every``); draw it with::

    python examples/observe_migration/load.py --dump loop-share.jsonl
    python -m bridges report loop-share.jsonl -o loop-share.png

``--self-test`` runs a short load, checks every response and that the dump
shows asyncio's share growing, and exits 0 or 1.  Everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import bridges
from bridges._demo import Servers, answer, hop, line_get
from bridges.metrics import dump_every, shares

CLIENTS = 3
CHAIN_EVERY = 25
"""One request in this many is a ``GET /chain`` through every framework."""


async def serve_asyncio_endpoint() -> asyncio.AbstractServer:
    """The handler that has already been moved: plain asyncio streams."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        body = answer([hop("asyncio", "asyncio.start_server handler", f"GET {path}")])
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def http_get(port: int, path: str) -> list[dict[str, Any]]:
    """One HTTP/1.0 request with a blocking socket (the clients share nothing with the hub)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise AssertionError(f"GET {path} on port {port} answered {head[:80]!r}")
    return json.loads(body)["hops"]  # type: ignore[no-any-return]


class Load:
    """Client threads whose mix moves from the legacy endpoints to the asyncio one."""

    def __init__(self, servers: Servers, asyncio_port: int, seconds: float) -> None:
        ports = servers.ports
        self.legacy: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
            ("twisted", lambda: http_get(ports.twisted, "/")),
            ("gevent", lambda: http_get(ports.gevent, "/")),
            ("asyncore", lambda: line_get(ports.asyncore)["hops"]),
        ]
        self.moved = ("asyncio", lambda: http_get(asyncio_port, "/"))
        self.chain = ("tornado", lambda: http_get(ports.tornado, "/chain"))
        self.seconds = seconds
        self.started = 0.0
        self.done = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def run_client(self, seed: int) -> None:
        chooser = random.Random(seed)
        while (elapsed := time.monotonic() - self.started) < self.seconds:
            moved_share = min(1.0, elapsed / self.seconds * 1.2)  # the migration's progress
            if chooser.randrange(CHAIN_EVERY) == 0:
                expected, request = self.chain
            elif chooser.random() < moved_share:
                expected, request = self.moved
            else:
                expected, request = chooser.choice(self.legacy)
            try:
                hops = request()
                if hops[0]["framework"] != expected or any("error" in h for h in hops):
                    raise AssertionError(f"unexpected answer {hops!r}")
            except Exception as exc:  # noqa: BLE001 - counted and reported, the load goes on
                with self._lock:
                    self.errors.append(f"{expected}: {exc!r}")
                continue
            with self._lock:
                self.done += 1

    async def run(self) -> None:
        self.started = time.monotonic()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, self.run_client, seed) for seed in range(CLIENTS))
        )


async def main(dump: Path, seconds: float, interval: float) -> Load:
    servers = Servers(0)
    await servers.start()
    moved = await serve_asyncio_endpoint()
    recorder = dump_every(interval, str(dump))
    try:
        load = Load(servers, moved.sockets[0].getsockname()[1], seconds)
        await load.run()
    finally:
        recorder.cancel()
        await asyncio.wait({recorder})
        moved.close()
        await servers.close()
    return load


def self_check(dump: Path, load: Load) -> list[str]:
    problems = (
        [f"{len(load.errors)} failed requests, e.g. {load.errors[:3]}"] if load.errors else []
    )
    samples = [json.loads(line) for line in dump.read_text().splitlines()]
    if len(samples) < 4:
        return [*problems, f"only {len(samples)} samples in {dump}"]
    # Halves of the run, not single samples: a half-second sample of a loaded
    # machine may hold a handful of requests, and the mix moves over the run.
    middle = len(samples) // 2
    first = shares(samples[0], samples[middle])
    last = shares(samples[middle], samples[-1])
    for name in ("asyncio", "twisted", "gevent", "asyncore", "tornado"):
        if name not in samples[-1]["frameworks"]:
            problems.append(f"{name} never appears in the accounting")
    if not last.get("asyncio", 0) > first.get("asyncio", 0):
        problems.append(f"asyncio's share did not grow: {first} -> {last}")
    return problems


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--dump", type=Path, help="where to write the samples (JSON lines)")
    parser.add_argument("--self-test", action="store_true", help="a short run, checked")
    args = parser.parse_args()
    if args.self_test:
        args.seconds, args.interval = 4.0, 0.5
        args.dump = args.dump or Path(tempfile.mkdtemp()) / "loop-share.jsonl"
    dump = args.dump or Path("loop-share.jsonl")
    dump.unlink(missing_ok=True)
    load = bridges.run(main, dump, args.seconds, args.interval)
    print(f"{load.done} requests served, {len(load.errors)} failed; samples in {dump}")
    if not args.self_test:
        print(f"Draw them: python -m bridges report {dump} -o loop-share.png")
        return 0
    problems = self_check(dump, load)
    for problem in problems:
        print(f"FAILED: {problem}")
    print("self-test passed" if not problems else "self-test FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(cli())
