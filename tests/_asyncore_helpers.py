"""Dispatchers and helpers shared by the asyncore adapter's tests."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
import warnings
from typing import Any, Awaitable, Callable

import pytest

import bridges
from bridges import asyncore as ba  # imports asyncore without its DeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asynchat
    import asyncore

__all__ = [
    "LOOPS",
    "Echo",
    "EchoServer",
    "Recorder",
    "asynchat",
    "asyncore",
    "ba",
    "collect_reports",
    "connect_pair",
    "enough_fds",
    "needs_uvloop",
    "run",
    "until",
]

needs_uvloop = pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
)

LOOPS = [
    pytest.param(None, id="asyncio"),
    pytest.param("uvloop", id="uvloop", marks=needs_uvloop),
]


def run(main: Callable[[], Awaitable[Any]], loop_factory: Any = None) -> Any:
    """Run ``main`` on a hub with only asyncore attached."""
    return bridges.run(main, frameworks=["asyncore"], loop_factory=loop_factory)


class Echo(asyncore.dispatcher_with_send):
    """The echo handler from asyncore's documentation."""

    def handle_read(self) -> None:
        data = self.recv(65536)
        if data:
            self.send(data)


class EchoServer(asyncore.dispatcher):
    """A listening dispatcher that starts an :class:`Echo` per connection."""

    def __init__(self, map: Any = None, handler: type = Echo) -> None:
        super().__init__(map=map)
        self.handler = handler
        self.handlers: list[Any] = []
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", 0))
        self.listen(4096)
        self.port: int = self.socket.getsockname()[1]

    def handle_accepted(self, sock: socket.socket, addr: Any) -> None:
        self.handlers.append(self.handler(sock, map=self._map))


class Recorder(asyncore.dispatcher):
    """A dispatcher that records which handlers ran, in order."""

    def __init__(self, sock: socket.socket | None = None, map: Any = None) -> None:
        super().__init__(sock, map=map)
        self.calls: list[str] = []
        self.errors: list[BaseException] = []
        self.want_read = True
        self.want_write = False

    def readable(self) -> bool:
        return self.want_read

    def writable(self) -> bool:
        return self.want_write

    def handle_read(self) -> None:
        self.calls.append("read")
        self.recv(65536)

    def handle_write(self) -> None:
        self.calls.append("write")
        self.want_write = False

    def handle_expt(self) -> None:
        self.calls.append("expt")
        self.socket.recv(1, socket.MSG_OOB)

    def handle_close(self) -> None:
        self.calls.append("close")
        self.close()

    def handle_error(self) -> None:
        self.calls.append("error")
        self.errors.append(sys.exc_info()[1])  # type: ignore[arg-type]
        self.close()


def enough_fds(count: int) -> None:
    """Raise RLIMIT_NOFILE to ``count``: both ends of 1,000 connections live in this process."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"needs {count} file descriptors; the hard limit is {hard}")
    if soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def connect_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on 127.0.0.1: (ours, peer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    ours = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    listener.close()
    return ours, peer


def collect_reports() -> list[dict[str, Any]]:
    """Route the running loop's exception handler into a list, and return the list."""
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: seen.append(context))
    return seen


async def until(predicate: Callable[[], bool], what: str, passes: int = 2000) -> None:
    """Yield to the loop until ``predicate()`` holds (bounded; fails with ``what``)."""
    for _ in range(passes):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"gave up waiting until {what}")
