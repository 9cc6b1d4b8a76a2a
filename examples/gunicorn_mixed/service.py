"""A mixed-framework service for gunicorn: gevent WSGI views calling asyncio and Twisted.

Each worker process runs one bridges hub. On it:

* the WSGI app (a greenlet per request: blocking-style gevent code) counts
  page hits in an asyncio store and asks a Twisted function for a greeting,
  blocking only its own greenlet (``bg.wait``);
* a Twisted line server, started by a startup hook on a second socket that
  gunicorn bound (``-b``), so every worker serves it and a reload keeps it
  listening, answers ``status`` with the worker's pid and request count.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Callable, Iterable

from bridges import gevent as bg
from bridges import gunicorn as bgu

STATUS_ADDRESS = os.environ.get("STATUS_ADDRESS", "127.0.0.1:8001")
_hits: dict[str, int] = {}
_lock = asyncio.Lock()


async def count_hit(page: str) -> int:
    """New asyncio code: a store with an await in it, as a real client library has."""
    async with _lock:
        await asyncio.sleep(0)
        _hits[page] = _hits.get(page, 0) + 1
        return _hits[page]


def legacy_greeting(page: str) -> Any:
    """Old Twisted code, unchanged: returns a Deferred."""
    from twisted.internet import reactor, task

    return task.deferLater(reactor, 0.001, lambda: f"welcome to {page}")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if not path.startswith("/hits/"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /hits/<page>\n"]
    page = path[len("/hits/") :]
    body = {
        "page": page,
        "hits_in_this_worker": bg.wait(count_hit(page)),  # asyncio, from a greenlet
        "greeting": bg.wait(legacy_greeting(page)),  # a Deferred, from a greenlet
        "pid": os.getpid(),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode() + b"\n"]


@bgu.on_startup
def serve_status(worker: bgu.HubWorker) -> None:
    """In every worker, on its hub: a Twisted line server on the socket gunicorn bound for it."""
    from twisted.internet import protocol, reactor
    from twisted.protocols.basic import LineReceiver

    class Status(LineReceiver):
        def lineReceived(self, line: bytes) -> None:
            if line.strip() == b"status":
                answer = {"pid": os.getpid(), "requests": worker.nr}
                self.sendLine(json.dumps(answer).encode())
            self.transport.loseConnection()

    sock = worker.claim_listener(STATUS_ADDRESS)
    reactor.adoptStreamPort(sock.fileno(), sock.family, protocol.Factory.forProtocol(Status))
