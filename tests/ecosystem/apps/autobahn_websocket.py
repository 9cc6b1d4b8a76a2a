"""autobahn's Twisted flavour on the hub: a WebSocket server whose replies come from asyncio.

The server's ``onMessage`` hands each message to an asyncio coroutine with
``bt.deferred`` and sends the reply from the Deferred's callback (autobahn's
Twisted protocol calls ``onMessage`` and drops what it returns, so an
``async def onMessage`` would never run, natively too).  An autobahn
client on the same hub sends three messages and closes.  Then it tries
autobahn's asyncio flavour in the same process: txaio allows one framework
per process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import bridges
from bridges import twisted as bt


async def shout(text: str) -> str:
    await asyncio.sleep(0)  # an asyncio await: this runs as an asyncio task
    return text.upper()


async def main() -> dict[str, Any]:
    from autobahn.twisted.websocket import (
        WebSocketClientFactory,
        WebSocketClientProtocol,
        WebSocketServerFactory,
        WebSocketServerProtocol,
    )
    from twisted.internet import reactor

    closed = asyncio.get_running_loop().create_future()
    replies: list[str] = []

    class Shouter(WebSocketServerProtocol):
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            replied = bt.deferred(shout(payload.decode()))
            replied.addCallback(lambda reply: self.sendMessage(reply.encode(), False))

    class Client(WebSocketClientProtocol):
        def onOpen(self) -> None:
            for number in range(3):
                self.sendMessage(f"hello {number}".encode())

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            replies.append(payload.decode())
            if len(replies) == 3:
                self.sendClose()

        def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
            if not closed.done():
                closed.set_result(wasClean)

    server = WebSocketServerFactory()
    server.protocol = Shouter
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    try:
        number = port.getHost().port
        client = WebSocketClientFactory(f"ws://127.0.0.1:{number}")
        client.protocol = Client
        reactor.connectTCP("127.0.0.1", number, client)
        clean = await asyncio.wait_for(closed, 30)
    finally:
        await bridges.awaitable(port.stopListening())
    try:
        import autobahn.asyncio.websocket  # noqa: F401 - the other flavour, same process
    except RuntimeError as exc:
        other_flavour = str(exc)
    else:
        other_flavour = "imported"
    return {"replies": replies, "clean": clean, "other_flavour": other_flavour}


if __name__ == "__main__":
    print(json.dumps(bridges.run(main, frameworks=["twisted"])), flush=True)
