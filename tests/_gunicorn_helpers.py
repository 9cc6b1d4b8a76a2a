"""A real gunicorn master and hub workers in a subprocess: bounded waits, always killed."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _demo_helpers import ROOT, child_env

APPS = Path(__file__).resolve().parent / "gunicorn_apps"
SERVING = re.compile(r"Hub worker serving \(pid: (\d+)")
STOCK_BOOT = re.compile(r"Booting worker with pid: (\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _control_socket_args() -> list[str]:
    # gunicorn 27 opens a control socket in the home directory; parallel tests must not share it.
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


class Gunicorn:
    """``python -m bridges.gunicorn ... APP`` run from tests/gunicorn_apps, in its own session."""

    def __init__(
        self,
        app: str,
        *options: str,
        workers: int = 2,
        worker_class: str = "bridges.gunicorn.HubWorker",
        frameworks: str | None = "gevent",
        binds: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_path: Path,
        ready_pattern: re.Pattern[str] = SERVING,
    ) -> None:
        args = [sys.executable, "-m", "bridges.gunicorn", "-k", worker_class, "-w", str(workers)]
        if frameworks is not None:
            args += ["--bridges-frameworks", frameworks]
        args += ["-b", "127.0.0.1:0"]
        for bind in binds:
            args += ["-b", bind]
        args += ["--log-level", "info", "--graceful-timeout", "10", *_control_socket_args()]
        args += [*options, app]
        self.ready_pattern = ready_pattern
        self.log_path = log_path
        self._log = open(log_path, "w+b")  # noqa: SIM115 - closed in __exit__
        environment = child_env()
        inherited = [environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else []
        environment["PYTHONPATH"] = os.pathsep.join([str(APPS), str(ROOT), *inherited])
        environment.update(env or {})
        self.process = subprocess.Popen(
            args,
            cwd=APPS,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.port = 0

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(
        self, pattern: str | re.Pattern[str], *, count: int = 1, timeout: float = 60
    ) -> list[str]:
        """Wait for ``count`` matches of ``pattern`` in the log; return their group 1 (or 0)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        while True:
            found = [
                m.group(1) if m.groups() else m.group(0) for m in regex.finditer(self.output())
            ]
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                raise AssertionError(
                    f"gunicorn exited ({self.process.returncode}) before {count} x "
                    f"{regex.pattern!r}:\n" + self.output()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {count} x {regex.pattern!r} within {timeout}s. Log:\n{self.output()}"
                )
            time.sleep(0.05)

    def serving_pids(self) -> list[int]:
        return [int(pid) for pid in SERVING.findall(self.output())]

    def start(self, workers: int) -> Gunicorn:
        port = self.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)")[0]
        self.port = int(port)
        self.wait_for(self.ready_pattern, count=workers)
        return self

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"gunicorn did not exit within {timeout}s. Log:\n{self.output()}"
            ) from None

    def worker_exit_errors(self) -> list[str]:
        """The master's complaints about workers: non-zero exits and unexpected signals."""
        text = self.output()
        return re.findall(
            r"Worker \(pid:\d+\) (?:exited with code \d+|was sent SIG(?!TERM)\w+)", text
        )

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process.poll() is None:
            # The whole session: master and workers (and nothing else: it is ours alone).
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def get(port: int, path: str, *, timeout: float = 20) -> tuple[int, dict[str, Any]]:
    """One GET on a fresh connection (``Connection: close``); the status and the JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith(b"{") else {"raw": body}
    finally:
        conn.close()


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None
    body: dict[str, Any] | None
    error: BaseException | None


class Load:
    """``clients`` threads GETting ``path`` until stopped, at most ``limit`` requests each."""

    def __init__(self, port: int, path: str, *, clients: int = 6, limit: int = 400) -> None:
        self.port = port
        self.path = path
        self.limit = limit
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=clients)
        self._futures = [self._pool.submit(self._client) for _ in range(clients)]

    def _client(self) -> None:
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                status, body = get(self.port, self.path)
                outcome = Outcome(started, time.monotonic(), status, body, None)
            except (OSError, http.client.HTTPException) as exc:
                outcome = Outcome(started, time.monotonic(), None, None, exc)
            with self._lock:
                self.outcomes.append(outcome)

    def served(self) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if outcome.status == 200)

    def wait_served(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.served() < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {self.served()} of {count} requests served in {timeout}s"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 60) -> list[Outcome]:
        """Stop the clients after their current request; every outcome so far."""
        self._stop.set()
        return self.finish(timeout)

    def finish(self, timeout: float = 60) -> list[Outcome]:
        """Let every client make its ``limit`` requests; every outcome."""
        for future in self._futures:
            future.result(timeout=timeout)
        self._pool.shutdown()
        return list(self.outcomes)
