"""Helpers of the ecosystem suite: bounded child processes, free ports, HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this checkout importable, no proxy for 127.0.0.1."""
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_app(name: str, *args: str, timeout: float = 120, **env: str) -> Any:
    """Run ``apps/<name>.py`` to its end; return the JSON its last stdout line prints.

    ``subprocess.run`` kills the child when ``timeout`` passes, so a hang
    fails the test instead of the run.
    """
    done = subprocess.run(
        [sys.executable, str(APPS / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(**env),
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{name} exited with {done.returncode}:\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise AssertionError(f"{name} printed nothing:\n{done.stderr[-4000:]}")
    result = json.loads(lines[-1])
    result["stderr"] = done.stderr
    return result


class Child:
    """A long-running child process, killed (with its process group) when the test ends."""

    def __init__(self, argv: list[str], **env: str) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(**env),
            start_new_session=True,
        )

    def wait(self, timeout: float) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            self.proc.communicate(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, child: Child, timeout: float = 60) -> None:
    """Until something listens on ``port`` (failing early if ``child`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            _, err = child.proc.communicate(timeout=10)
            raise AssertionError(f"the server exited with {child.proc.returncode}:\n{err[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on 127.0.0.1:{port} within {timeout:g}s")


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """One HTTP/1.0 GET; returns (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def keep_alive_client(port: int, paths: list[str], timeout: float = 20) -> list[bytes]:
    """One HTTP/1.1 keep-alive connection (asyncio streams) asking for ``paths`` in turn."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    bodies = []
    try:
        for path in paths:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            lines = head.decode("latin-1").split("\r\n")
            if " 200 " not in lines[0] + " ":
                raise AssertionError(f"GET {path}: {lines[0]}")
            fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            length = int({k.lower(): v for k, v in fields.items()}["content-length"])
            bodies.append(await asyncio.wait_for(reader.readexactly(length), timeout))
    finally:
        writer.close()
    return bodies
