"""Step 3: the ``/greet`` handler rewritten in asyncio; it still calls the old Twisted data layer.

python step3_asyncio_handler.py [--port 8000]
python step3_asyncio_handler.py --self-test
"""

from __future__ import annotations

import json
import sys
from typing import Any, Awaitable, Callable

import selftest

import bridges
from bridges import twisted as bt

Handler = Callable[[Any], Awaitable[tuple[int, dict[str, Any]]]]


async def greet(request: Any) -> tuple[int, dict[str, Any]]:
    """The new handler: plain asyncio code, returning (status, JSON body)."""
    from legacy_service import lookup_user  # the old Twisted code, unchanged

    name = request.args.get(b"name", [b"ada"])[0].decode()
    try:
        # lookup_user returns a Deferred; bridges.awaitable lets asyncio await it.
        # Its KeyError arrives here as the same exception object.
        user = await bridges.awaitable(lookup_user(name))
    except KeyError:
        return 404, {"error": f"no user {name!r}", "handler": "asyncio"}
    greeting = f"Hello, {user['full_name']}!"
    return 200, {"greeting": greeting, "handler": "asyncio", "data": user["data"]}


def asyncio_resource(handler: Handler) -> Any:
    """A twisted.web resource that serves an ``async def`` handler: the glue, written once."""
    from twisted.python.failure import Failure
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET

    class AsyncioResource(Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> Any:
            d = bt.deferred(handler(request))  # the coroutine runs as a real asyncio task
            # The client went away: cancel the task (it sees asyncio.CancelledError).
            gone = request.notifyFinish()
            gone.addErrback(lambda _: d.cancel())

            def answer(status: int, body: bytes) -> None:
                if gone.called:  # it fires before finish() only if the connection was lost
                    return
                request.setResponseCode(status)
                request.setHeader(b"content-type", b"application/json")
                request.write(body)
                request.finish()

            def fail(failure: Failure) -> Failure | None:
                answer(500, b'{"error": "internal server error"}')
                # The handler's exception is a bug: leave it unhandled, so that the hub
                # reports it (once). A cancellation after the client left is not one.
                return None if gone.called else failure

            d.addCallbacks(lambda result: answer(result[0], json.dumps(result[1]).encode()), fail)
            return NOT_DONE_YET

    return AsyncioResource()


def make_site() -> Any:
    import legacy_service

    return legacy_service.make_site(greet=asyncio_resource(greet))


if __name__ == "__main__":
    bt.install()  # before anything imports twisted.internet.reactor: reactor.run() runs a hub
    sys.exit(selftest.serve(__doc__, make_site, [("greet", "asyncio", "twisted")]))
