"""A WSGI app served by gevent's pywsgi on the hub: one greenlet per connection.

With gevent attached, a view is ordinary blocking-style gevent code: it may
call ``bg.wait`` and monkey-patched libraries, and blocks only its own
greenlet.  The connections of one worker share one ``gevent.pool.Pool`` of
``worker_connections`` greenlets, so a full worker stops accepting (as
gunicorn's own gevent worker does).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import bridges

from . import _compat

__all__ = ["GeventWSGIServing"]


class _Response:
    """What gunicorn's access log reads from a response."""

    def __init__(self, status: str, headers: Any, sent: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = sent


def _handler_class(worker: Any, busy: set[Any]) -> type:
    from gevent import pywsgi

    class Handler(pywsgi.WSGIHandler):  # type: ignore[misc]  # gevent is untyped
        """pywsgi's handler that keeps gunicorn's books: requests served, access log, drain."""

        def handle(self) -> None:
            try:
                super().handle()
            finally:
                busy.discard(self)

        def read_requestline(self) -> str:
            # Waiting here for the first byte of the next request is "idle":
            # a drained worker closes such a connection without losing anything.
            busy.discard(self)
            line = super().read_requestline()
            if line:
                busy.add(self)
            return line  # type: ignore[no-any-return]

        def handle_one_response(self) -> None:
            if not worker.alive:
                self.close_connection = True  # answered with "Connection: close"
            try:
                super().handle_one_response()
            finally:
                busy.discard(self)
                worker.count_request()
                if not worker.alive:
                    self.close_connection = True

        def get_environ(self) -> dict[str, Any]:
            environ = super().get_environ()
            environ["gunicorn.sock"] = self.socket
            environ["RAW_URI"] = self.path
            return environ  # type: ignore[no-any-return]

        def log_request(self) -> None:
            started = datetime.datetime.fromtimestamp(self.time_start)
            finished = datetime.datetime.fromtimestamp(self.time_finish)
            status = self.status.decode() if isinstance(self.status, bytes) else self.status
            response = _Response(
                status, getattr(self, "response_headers", []), self.response_length
            )
            headers = self.headers.items() if hasattr(self, "headers") else []
            worker.log.access(response, headers, self.environ, finished - started)

    return Handler


class GeventWSGIServing:
    """pywsgi servers on the worker's listening sockets, on the hub's gevent hub."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.busy: set[Any] = set()
        self.servers: list[Any] = []
        self.pool: Any = None

    async def start(self) -> None:
        import gevent
        from gevent import pywsgi
        from gevent import socket as gsocket
        from gevent.pool import Pool
        from gunicorn.http.wsgi import base_environ

        worker = self.worker
        cfg = worker.cfg
        self.pool = Pool(worker.worker_connections)
        handler = _handler_class(worker, self.busy)
        ssl_args = {"ssl_context": _compat.ssl_context(cfg)} if cfg.is_ssl else {}
        for listener in worker.listeners:
            # A duplicate, so that closing gevent's socket leaves gunicorn's own alone.
            sock = gsocket.socket(fileno=os.dup(listener.sock.fileno()))
            environ = base_environ(cfg)
            environ.update(_server_address(sock.getsockname()))
            environ["wsgi.multithread"] = True  # greenlets are threads to a WSGI app
            server = pywsgi.WSGIServer(
                sock,
                worker.wsgi,
                spawn=self.pool,
                handler_class=handler,
                log=None,
                environ=environ,
                **ssl_args,
            )
            if cfg.workers > 1:
                server.max_accept = 1  # let the other workers take their share
            self.servers.append(server)
        # start() may block (gevent's resolver): run it in a greenlet.
        await bridges.awaitable(gevent.spawn(self._start_servers))

    def _start_servers(self) -> None:
        for server in self.servers:
            if self.worker.alive:  # not told to stop while starting
                server.start()

    def stop_accepting(self) -> None:
        for server in self.servers:
            if not server.closed:
                server.close()

    def in_flight(self) -> int:
        return len(self.busy)

    async def close(self) -> None:
        """Close what is left: idle keep-alive connections, and requests past the deadline."""
        import gevent

        if self.pool is not None and len(self.pool):
            await bridges.awaitable(gevent.spawn(self.pool.kill, timeout=1))


def _server_address(address: Any) -> dict[str, str]:
    # Given here, pywsgi does not look the host name up (a blocking call) on start.
    if isinstance(address, tuple):
        return {"SERVER_NAME": str(address[0]), "SERVER_PORT": str(address[1])}
    return {"SERVER_NAME": str(address), "SERVER_PORT": ""}
