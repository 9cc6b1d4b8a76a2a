"""Step 4: the data layer moves to asyncio; old Twisted code calls it through ``bt.deferred``.

python step4_old_calls_new.py [--port 8000]
python step4_old_calls_new.py --self-test
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Awaitable, Callable

import selftest

from bridges import twisted as bt

Handler = Callable[[Any], Awaitable[tuple[int, dict[str, Any]]]]


async def fetch_user(name: str) -> dict[str, str]:
    """The new data layer: plain asyncio code (an asyncio database driver, in real life)."""
    from legacy_service import USERS  # the same table the old data layer read

    await asyncio.sleep(0.01)
    if name not in USERS:
        raise KeyError(name)
    return {"name": name, "full_name": USERS[name], "data": "asyncio"}


def lookup_for_twisted(name: str) -> Any:
    """What the old code expects -- a Deferred -- made from the new coroutine.

    The coroutine runs as a real asyncio task; its result or its KeyError
    reaches the old ``addCallbacks`` chain unchanged.
    """
    return bt.deferred(fetch_user(name))


async def greet(request: Any) -> tuple[int, dict[str, Any]]:
    """The new handler: plain asyncio code, returning (status, JSON body)."""
    name = request.args.get(b"name", [b"ada"])[0].decode()
    try:
        user = await fetch_user(name)  # asyncio all the way down now
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

    site = legacy_service.make_site(greet=asyncio_resource(greet))
    # Old clients keep the old callback-style handler, now backed by the asyncio data layer.
    site.resource.putChild(b"greet-v1", legacy_service.Greeting(lookup_for_twisted))
    return site


if __name__ == "__main__":
    bt.install()  # before anything imports twisted.internet.reactor: reactor.run() runs a hub
    checks = [("greet", "asyncio", "asyncio"), ("greet-v1", "twisted", "asyncio")]
    sys.exit(selftest.serve(__doc__, make_site, checks))
