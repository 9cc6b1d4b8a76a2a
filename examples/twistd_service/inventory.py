"""The inventory service: old Twisted code, and new asyncio code added to it.

``Stock`` and ``StockPage`` are the legacy service (twisted.web, Deferreds).
``Restocker`` and ``ForecastPage`` are new: asyncio coroutines that await the
old Deferreds through ``bridges.awaitable`` and are handed to Twisted as
Deferreds through ``bt.deferred``.  They need the hub, so run the service with
``twistd --reactor=bridges``.
"""

from __future__ import annotations

import asyncio

from twisted.application import service
from twisted.internet import defer, reactor, task
from twisted.python import log
from twisted.web import resource, server

import bridges
from bridges import twisted as bt


class Stock:
    """Legacy: the data layer, Deferred-based (a database in real life)."""

    def __init__(self) -> None:
        self.items = {"apples": 3, "pears": 0}
        self.restocks = 0

    def count(self, item: str) -> defer.Deferred[int]:
        return task.deferLater(reactor, 0.001, lambda: self.items.get(item, 0))

    def add(self, item: str, amount: int) -> defer.Deferred[None]:
        def store() -> None:
            self.items[item] = self.items.get(item, 0) + amount

        return task.deferLater(reactor, 0.001, store)


class StockPage(resource.Resource):
    """Legacy: ``GET /stock?item=apples``, a callback-style handler."""

    isLeaf = True

    def __init__(self, stock: Stock) -> None:
        super().__init__()
        self.stock = stock

    def render_GET(self, request: server.Request) -> object:
        item = request.args.get(b"item", [b"apples"])[0].decode()
        d = self.stock.count(item)
        d.addCallback(lambda n: request.write(f"{item}={n}\n".encode()))
        d.addBoth(lambda _: request.finish())
        return server.NOT_DONE_YET


class Restocker(service.Service):
    """New: an asyncio coroutine that runs as long as the service does.

    ``startService`` starts it as an asyncio task (``bt.deferred``) and
    ``stopService`` cancels it; twistd calls ``stopService`` on SIGTERM, in the
    hub's stop sequence, and waits for the Deferred it returns.
    """

    def __init__(self, stock: Stock, every: float = 0.05) -> None:
        self.stock = stock
        self.every = every
        self._running: defer.Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self._running = bt.deferred(self._restock_forever())

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        running, self._running = self._running, None
        if running is None:
            return None
        running.addErrback(lambda failure: failure.trap(defer.CancelledError))
        running.cancel()
        running.addCallback(lambda _: log.msg(f"restocker stopped after {self.stock.restocks}"))
        return running

    async def _restock_forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            for item in list(self.stock.items):
                if await bridges.awaitable(self.stock.count(item)) == 0:
                    await bridges.awaitable(self.stock.add(item, 5))
                    self.stock.restocks += 1


class ForecastPage(resource.Resource):
    """New: ``GET /forecast``, an ``async def`` handler served by twisted.web."""

    isLeaf = True

    def __init__(self, stock: Stock) -> None:
        super().__init__()
        self.stock = stock

    def render_GET(self, request: server.Request) -> object:
        d = bt.deferred(self.forecast())
        d.addCallback(request.write)
        d.addErrback(lambda failure: request.write(b"error\n"))
        d.addBoth(lambda _: request.finish())
        return server.NOT_DONE_YET

    async def forecast(self) -> bytes:
        counts = await asyncio.gather(
            *(bridges.awaitable(self.stock.count(item)) for item in sorted(self.stock.items))
        )
        total = sum(counts)
        return f"total={total} restocks={self.stock.restocks}\n".encode()


def site(stock: Stock) -> server.Site:
    root = resource.Resource()
    root.putChild(b"stock", StockPage(stock))
    root.putChild(b"forecast", ForecastPage(stock))
    return server.Site(root)
