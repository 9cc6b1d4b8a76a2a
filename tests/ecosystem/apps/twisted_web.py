"""klein serving and treq fetching, on the hub, against local servers only.

klein imports ``twisted.internet.reactor`` when it is imported, so it is
imported inside the code the hub runs (where the reactor is the hub's).
Its ``async def`` routes run under Twisted's ``ensureDeferred``, where
asyncio cannot be awaited directly: they await ``bt.deferred(...)``.
"""

from __future__ import annotations

import asyncio
import json

import bridges
from bridges import twisted as bt


async def asyncio_work(name: str) -> str:
    await asyncio.sleep(0.01)
    return f"asyncio says hello to {name}"


async def plain_asyncio_server() -> asyncio.AbstractServer:
    """A minimal HTTP/1.0 server written with asyncio streams, for treq to fetch from."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"from asyncio streams"
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def main() -> dict[str, object]:
    import treq
    from klein import Klein
    from twisted.internet import reactor
    from twisted.web.server import Site

    app = Klein()

    @app.route("/sync")
    def sync_route(request: object) -> str:
        return "klein sync"

    @app.route("/deferred/<name>")
    def deferred_route(request: object, name: str) -> object:
        return bt.deferred(asyncio_work(name))

    @app.route("/async/<name>")
    async def async_route(request: object, name: str) -> str:
        return await bt.deferred(asyncio_work(name))

    port = reactor.listenTCP(0, Site(app.resource()), interface="127.0.0.1")
    streams = await plain_asyncio_server()
    try:
        base = f"http://127.0.0.1:{port.getHost().port}"
        paths = ["/sync", "/deferred/treq", "/async/treq"]
        bodies = {}
        for path in paths:
            response = await bridges.awaitable(treq.get(base + path))
            bodies[path] = [response.code, await bridges.awaitable(treq.text_content(response))]
        # Many at once: treq's pool and klein's routes interleave on the hub.
        many = await asyncio.gather(
            *(bridges.awaitable(treq.get(f"{base}/async/n{i}")) for i in range(50))
        )
        texts = await asyncio.gather(*(bridges.awaitable(treq.text_content(r)) for r in many))
        stream_port = streams.sockets[0].getsockname()[1]
        response = await bridges.awaitable(treq.get(f"http://127.0.0.1:{stream_port}/"))
        from_streams = await bridges.awaitable(treq.text_content(response))
    finally:
        streams.close()
        await bridges.awaitable(port.stopListening())
    return {
        "bodies": bodies,
        "many": sorted(texts) == sorted(f"asyncio says hello to n{i}" for i in range(50)),
        "from_streams": from_streams,
    }


if __name__ == "__main__":
    print(json.dumps(bridges.run(main, frameworks=["twisted"])))
