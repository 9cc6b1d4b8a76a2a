"""Run the mixed service under gunicorn with N hub workers, or check it end to end.

    python run.py [--workers 2] [--port 8000] [--status-port 8001]
    python run.py --self-test    # free ports, 2 workers, real requests, SIGTERM; exit 0 or 1

It runs, as you would in production::

    STATUS_ADDRESS=127.0.0.1:8001 python -m bridges.gunicorn \\
        -k bridges.gunicorn.HubWorker --bridges-frameworks gevent,twisted \\
        -w 2 -b 127.0.0.1:8000 -b 127.0.0.1:8001 service:application
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def command(workers: int, port: int, status_port: int) -> list[str]:
    return [
        sys.executable, "-m", "bridges.gunicorn",
        "-k", "bridges.gunicorn.HubWorker", "--bridges-frameworks", "gevent,twisted",
        "-w", str(workers), "-b", f"127.0.0.1:{port}", "-b", f"127.0.0.1:{status_port}",
        "--graceful-timeout", "10", "service:application",
    ]  # fmt: skip


def start(workers: int, port: int, status_port: int, log: Any = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, STATUS_ADDRESS=f"127.0.0.1:{status_port}")
    return subprocess.Popen(
        command(workers, port, status_port), cwd=HERE, env=env, stdout=log, stderr=log
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"status\r\n")
        return json.loads(sock.makefile().readline())  # type: ignore[no-any-return]


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _wait_serving(log_path: str, workers: int, timeout: float = 60) -> set[int]:
    """The pids of the workers once ``workers`` of them serve."""
    deadline = time.monotonic() + timeout
    while True:
        pids = {int(pid) for pid in re.findall(r"Hub worker serving \(pid: (\d+)", _read(log_path))}
        if len(pids) >= workers:
            return pids
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start:\n{_read(log_path)}")
        time.sleep(0.1)


def _read(path: str) -> str:
    return Path(path).read_text(errors="replace")


def self_test() -> bool:
    port, status_port = _free_port(), _free_port()
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        server = start(2, port, status_port, log)
        try:
            workers = _wait_serving(log.name, 2)
            url = f"http://127.0.0.1:{port}/hits/self-test"
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda _: _get(url), range(40)))
            statuses = [_status(status_port) for _ in range(6)]
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    hits: dict[int, list[int]] = {}
    for answer in answers:
        hits.setdefault(answer["pid"], []).append(answer["hits_in_this_worker"])
    greetings = {answer["greeting"] for answer in answers}
    checks = [
        ("40 requests answered by the gunicorn workers", set(hits) <= workers),
        (
            "asyncio counted every request once, in its worker",
            all(sorted(seen) == list(range(1, len(seen) + 1)) for seen in hits.values()),
        ),
        ("a Twisted Deferred answered in every request", greetings == {"welcome to self-test"}),
        (
            "the Twisted status server runs in the workers",
            {status["pid"] for status in statuses} <= workers,
        ),
        ("SIGTERM: gunicorn exited 0", code == 0),
    ]
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"served by workers {sorted(hits)}")
    passed = all(ok for _, ok in checks)
    print("self-test passed" if passed else "self-test FAILED", flush=True)
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--status-port", type=int, default=8001)
    parser.add_argument("--self-test", action="store_true", help="check it end to end, exit")
    args = parser.parse_args()
    if args.self_test:
        return 0 if self_test() else 1
    print(f"http://127.0.0.1:{args.port}/hits/home")
    print(f"echo status | nc 127.0.0.1 {args.status_port}")
    server = start(args.workers, args.port, args.status_port)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reached gunicorn too: it stops its workers
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
