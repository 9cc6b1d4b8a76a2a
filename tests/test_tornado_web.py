"""tornado.web on the hub, end to end over real sockets: WebSocket clients of two kinds, and
handlers that await other frameworks' primitives."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
from _tornado_helpers import LOOPS, EchoWebSocket, Served, raw_websocket_echo, run_tornado
from tornado import gen

import bridges

pytestmark = pytest.mark.timeout(60)


def _adapter_available(name: str) -> bool:
    return importlib.util.find_spec(f"bridges.{name}") is not None


needs_twisted = pytest.mark.skipif(
    not _adapter_available("twisted"),
    reason="the Twisted adapter (bridges.twisted) is not there yet",
)
needs_gevent = pytest.mark.skipif(
    not _adapter_available("gevent"), reason="the gevent adapter (bridges.gevent) is not there yet"
)


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_websocket_endpoint_on_the_hub_echoes_to_tornados_own_client(loop_factory: str) -> None:
    async def main() -> list[Any]:
        served = Served(tornado.web.Application([("/ws", EchoWebSocket)]))
        connection = await tornado.websocket.websocket_connect(served.url("/ws", "ws"))
        replies = []
        for text in ("one", "two", "three"):
            await connection.write_message(text)
            replies.append(await connection.read_message())
        connection.close()
        await served.close()
        return replies

    assert run_tornado(main, loop_factory=loop_factory) == ["echo:one", "echo:two", "echo:three"]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_websocket_endpoint_on_the_hub_echoes_to_a_raw_asyncio_streams_client(
    loop_factory: str,
) -> None:
    async def main() -> list[tuple[str, str]]:
        served = Served(tornado.web.Application([("/ws", EchoWebSocket)]))
        try:
            return list(
                await asyncio.gather(
                    *(raw_websocket_echo(served.port, "/ws", f"client {i}") for i in range(5))
                )
            )
        finally:
            await served.close()

    replies = run_tornado(main, loop_factory=loop_factory)
    assert replies == [("ok", f"echo:client {i}") for i in range(5)]


def test_an_http_handler_on_the_hub_answers_many_concurrent_clients() -> None:
    class Hello(tornado.web.RequestHandler):
        async def get(self, name: str) -> None:
            await asyncio.sleep(0)
            self.write(f"hello {name}")

    async def main() -> list[bytes]:
        served = Served(tornado.web.Application([(r"/(\w+)", Hello)]))
        client = tornado.httpclient.AsyncHTTPClient()
        responses = await asyncio.gather(*(client.fetch(served.url(f"/n{i}")) for i in range(50)))
        await served.close()
        return [r.body for r in responses]

    assert run_tornado(main) == [f"hello n{i}".encode() for i in range(50)]


# -- handlers awaiting other frameworks ---------------------------------------------


@needs_twisted
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_handler_awaits_a_twisted_deferred(loop_factory: str) -> None:
    class FromTwisted(tornado.web.RequestHandler):
        async def get(self) -> None:
            from twisted.internet import reactor, task

            value = await bridges.awaitable(task.deferLater(reactor, 0.01, lambda: "twisted"))
            self.write(value)

    async def main() -> bytes:
        served = Served(tornado.web.Application([("/", FromTwisted)]))
        response = await tornado.httpclient.AsyncHTTPClient().fetch(served.url("/"))
        await served.close()
        return response.body

    body = run_tornado(main, frameworks=["tornado", "twisted"], loop_factory=loop_factory)
    assert body == b"twisted"


@needs_gevent
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_handler_awaits_a_greenlet(loop_factory: str) -> None:
    class FromGevent(tornado.web.RequestHandler):
        async def get(self) -> None:
            import gevent

            def blocking() -> str:
                gevent.sleep(0.01)
                return "gevent"

            self.write(await bridges.awaitable(gevent.spawn(blocking)))

    async def main() -> bytes:
        served = Served(tornado.web.Application([("/", FromGevent)]))
        response = await tornado.httpclient.AsyncHTTPClient().fetch(served.url("/"))
        await served.close()
        return response.body

    body = run_tornado(main, frameworks=["gevent", "tornado"], loop_factory=loop_factory)
    assert body == b"gevent"


@needs_gevent
def test_a_gen_coroutine_yields_a_gevent_async_result_set_by_a_greenlet() -> None:
    @gen.coroutine
    def legacy() -> Any:
        import gevent
        import gevent.event

        result = gevent.event.AsyncResult()
        gevent.spawn_later(0.01, result.set, "set by a greenlet")
        value = yield result
        return value

    assert run_tornado(legacy, frameworks=["gevent", "tornado"]) == "set by a greenlet"


@needs_twisted
@needs_gevent
def test_a_gen_coroutine_handler_yields_a_list_mixing_deferred_greenlet_and_asyncio() -> None:
    class Mixed(tornado.web.RequestHandler):
        @gen.coroutine
        def get(self) -> Any:
            import gevent
            from twisted.internet import defer

            values = yield [
                defer.succeed("twisted"),
                gevent.spawn(lambda: "gevent"),
                asyncio.sleep(0, "asyncio"),
            ]
            self.write(",".join(values))

    async def main() -> bytes:
        served = Served(tornado.web.Application([("/", Mixed)]))
        response = await tornado.httpclient.AsyncHTTPClient().fetch(served.url("/"))
        await served.close()
        return response.body

    body = run_tornado(main, frameworks=["gevent", "tornado", "twisted"])
    assert body == b"twisted,gevent,asyncio"


def test_a_websocket_endpoint_works_with_every_installed_framework_attached() -> None:
    async def main() -> tuple[tuple[str, ...], str]:
        served = Served(tornado.web.Application([("/ws", EchoWebSocket)]))
        try:
            _, reply = await raw_websocket_echo(served.port, "/ws", "auto")
        finally:
            await served.close()
        return bridges.current_hub().frameworks, reply

    frameworks, reply = bridges.run(main, frameworks="auto")
    assert "tornado" in frameworks
    assert reply == "echo:auto"
