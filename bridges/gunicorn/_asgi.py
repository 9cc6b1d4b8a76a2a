"""An ASGI app served on the hub's loop by gunicorn's own ASGI protocol.

The worker accepts connections itself (``loop.connect_accepted_socket``), so
that it can stop accepting at ``worker_connections`` and resume below it, and
stop accepting at shutdown without closing gunicorn's listening sockets.  A
WSGI app without gevent is served the same way through a2wsgi, which runs it
in a bounded pool of ``threads`` threads.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from . import _compat

__all__ = ["ASGIServing", "wsgi_in_threads"]

_OWNER = "bridges.gunicorn"
# accept() errors that mean "try again later", not "this listener is broken".
_TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}


def wsgi_in_threads(wsgi: Any, threads: int) -> Any:
    """A WSGI app as an ASGI app whose calls run in a pool of ``threads`` threads."""
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(wsgi, workers=threads)


class ASGIServing:
    """Accepts on the worker's listeners and hands each connection to ASGIProtocol."""

    def __init__(self, worker: Any, *, lifespan: bool) -> None:
        self.worker = worker
        self.hub = worker.hub
        self.loop: asyncio.AbstractEventLoop = worker.loop
        self.listeners: list[socket.socket] = []
        self.accepting = False
        self.pending = 0  # accepted, protocol not made yet
        self.ssl = _compat.ssl_context(worker.cfg) if worker.cfg.is_ssl else None
        self.max_accept = 1 if worker.cfg.workers > 1 else 16
        self.lifespan_wanted = lifespan
        self.lifespan: Any = None

    async def start(self) -> None:
        await self._lifespan_startup()
        # After the lifespan: it may have claimed listeners for the app's own servers.
        self.listeners = [listener.sock for listener in self.worker.listeners]
        for sock in self.listeners:
            sock.setblocking(False)
        self.resume()

    async def _lifespan_startup(self) -> None:
        mode = getattr(self.worker.cfg, "asgi_lifespan", "auto")
        if not self.lifespan_wanted or mode == "off":
            return
        manager = _compat.lifespan_manager(self.worker.asgi, self.worker.log, self.worker.state)
        try:
            await manager.startup()
        except Exception as exc:
            if mode == "on" or type(exc).__name__ == "LifespanStartupFailed":
                raise
            self.worker.log.debug("ASGI lifespan not supported by the app: %s", exc)
            return
        self.lifespan = manager

    # -- accepting ------------------------------------------------------------

    def resume(self) -> None:
        if self.accepting or not self.worker.alive:
            return
        self.accepting = True
        for sock in self.listeners:
            self.hub.add_reader(sock, self._accept, sock, owner=_OWNER)

    def pause(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        for sock in self.listeners:
            self.hub.remove_reader(sock, owner=_OWNER)

    def connection_closed(self) -> None:
        if self.worker.alive and self._open() < self.worker.worker_connections:
            self.resume()

    def _open(self) -> int:
        return self.worker.nr_conns + self.pending

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(self.max_accept):
            if not self.worker.alive:  # gunicorn's protocol reached max_requests
                self.pause()
                return
            if self._open() >= self.worker.worker_connections:
                self.pause()
                return
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in _TRANSIENT:
                    raise
                self.worker.log.warning("accept() failed, trying again: %s", exc)
                return
            conn.setblocking(False)
            self.pending += 1
            self.loop.create_task(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: _compat.asgi_protocol(self.worker), conn, ssl=self.ssl
            )
        except (OSError, asyncio.TimeoutError) as exc:  # a client gone during the TLS handshake
            self.worker.log.debug("connection lost while being set up: %s", exc)
            conn.close()
        finally:
            self.pending -= 1

    # -- shutdown -------------------------------------------------------------

    def stop_accepting(self) -> None:
        self.pause()

    def in_flight(self) -> int:
        # gunicorn's protocol closes a keep-alive connection after its response
        # once the worker is no longer alive, and an idle one at its keepalive timeout.
        return self._open()

    async def close(self) -> None:
        if self.lifespan is not None:
            try:
                await self.lifespan.shutdown()
            except Exception as exc:  # noqa: BLE001 - the worker exits anyway; say why
                self.worker.log.error("ASGI lifespan shutdown failed: %s", exc)
