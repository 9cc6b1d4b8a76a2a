"""An ASGI app that awaits a Deferred and a greenlet, and starts Tornado and Twisted listeners.

Its lifespan startup claims the sockets gunicorn bound at ``$TORNADO_ADDR``
and ``$TWISTED_ADDR`` (when set) and serves them with a Tornado HTTPServer
(``add_sockets``) and a Twisted site (``reactor.adoptStreamPort``), on the
worker's hub, beside the ASGI app.
"""

from __future__ import annotations

import json
import os
import socket

import gevent

import bridges
from bridges import gunicorn as bgu


def _greenlet_work() -> str:
    gevent.sleep(0.005)
    return "gevent"


async def _body(scope: dict) -> dict:
    from twisted.internet import reactor, task

    deferred = task.deferLater(reactor, 0.005, lambda: "twisted")
    return {
        "twisted": await bridges.awaitable(deferred),
        "gevent": await bridges.awaitable(gevent.spawn(_greenlet_work)),
        "pid": os.getpid(),
        "path": scope["path"],
        "started": sorted(scope.get("state", {})),
    }


def _start_tornado(sock: socket.socket) -> None:
    import tornado.web
    from tornado.httpserver import HTTPServer

    class Pid(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write({"server": "tornado", "pid": os.getpid()})

    HTTPServer(tornado.web.Application([("/", Pid)])).add_sockets([sock])


def _start_twisted(sock: socket.socket) -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Pid(resource.Resource):
        isLeaf = True

        def render_GET(self, request: object) -> bytes:
            return json.dumps({"server": "twisted", "pid": os.getpid()}).encode()

    reactor.adoptStreamPort(sock.fileno(), sock.family, server.Site(Pid()))


async def _lifespan(scope: dict, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            worker = bgu.current_worker()
            for variable, start in (
                ("TORNADO_ADDR", _start_tornado),
                ("TWISTED_ADDR", _start_twisted),
            ):
                if os.environ.get(variable):
                    start(worker.claim_listener(os.environ[variable]))
                    scope["state"][variable] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    body = json.dumps(await _body(scope)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
