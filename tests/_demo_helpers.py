"""Run the demo and the examples as users do: in a subprocess, bounded, always killed at the end."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_command(args: list[str], *, timeout: float, cwd: Path | None = None) -> tuple[int, str]:
    """Run ``python <args>`` to the end; return its exit code and its whole output.

    ``subprocess.run`` kills the child when ``timeout`` passes; the test then
    fails with the output so far instead of hanging.
    """
    try:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=cwd or ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.output or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        raise AssertionError(
            f"`python {' '.join(args)}` did not finish within {timeout}s; it was killed. "
            f"Its output:\n{output}"
        ) from None
    return done.returncode, done.stdout


class Service:
    """A long-running child process whose output is read line by line, killed on exit."""

    def __init__(self, args: list[str], *, cwd: Path | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd or ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Read output until a line matches ``pattern``; fail with the output if none does."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout}s. Output:\n{self.output()}"
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"the process ended (exit {self.process.wait()}) before printing a line "
                    f"matching {pattern!r}. Output:\n{self.output()}"
                )
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``signum``; return the exit code once the process ended (kill it if it will not)."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the process did not exit within {timeout}s of signal {signum}; it was killed. "
                f"Output:\n{self.output()}"
            ) from None
        self._drain()
        return code

    def _drain(self) -> None:
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]
