"""Helpers for the entry-point tests: real services in subprocesses, bounded, killed at the end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0
"""Seconds a service gets to start, answer or stop before the test fails."""

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
TWIST = [sys.executable, "-m", "twisted"]


def wait_for(what: str, check: Callable[[], object], timeout: float = WAIT) -> object:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def logged_port(log: Path) -> int:
    """The port twisted.web logged it listens on ("Site starting on 40475")."""

    def port() -> int | None:
        found = re.search(r"Site starting on (\d+)", read(log))
        return int(found.group(1)) if found else None

    return int(wait_for(f"the service to log its port in {log}", port))  # type: ignore[arg-type]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def script(tmp_path: Path, code: str) -> Path:
    path = tmp_path / "service.py"
    path.write_text(textwrap.dedent(code))
    return path


def run_script(tmp_path: Path, code: str, *python_args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script to its end (bounded), capturing its output."""
    argv = [sys.executable, *python_args, str(script(tmp_path, code))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT)


class Service:
    """A service run as a subprocess; whatever it left running is killed at teardown."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def line(self, pattern: str) -> re.Match[str]:
        """Read the output until a line matches ``pattern`` (bounded by the test's timeout)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        pytest.fail(f"the service exited without printing {pattern!r}:\n{self.output()}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit status."""
        self.proc.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        try:
            rest, _ = self.proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
            self.lines.append(rest or "")
            pytest.fail(f"the service did not exit within {WAIT:g}s:\n{self.output()}")
        self.lines.append(rest or "")
        return self.proc.returncode

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def start(
    request: pytest.FixtureRequest, argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> Service:
    """Start a service that is killed when the test ends, whatever happened."""
    service = Service(argv, cwd, env)
    request.addfinalizer(service.kill)
    return service


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
