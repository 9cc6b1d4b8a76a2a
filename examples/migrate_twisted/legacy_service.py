"""The legacy service: plain Twisted, written years ago.  Every step uses this file *unchanged*.

``GET /greet?name=ada`` looks the user up through a Deferred-returning data
layer and answers JSON; an unknown name is a 404.  ``make_site`` takes the
data layer and the greeting resource as arguments, which is what lets the
later steps swap either one without touching this file.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.internet import reactor, task  # a module-level reactor import, as legacy code has
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

USERS = {"ada": "Ada Lovelace", "alan": "Alan Turing", "grace": "Grace Hopper"}


def lookup_user(name: str) -> Deferred:
    """The data layer: a Deferred that fires with the user (a database query, in real life)."""

    def find() -> dict[str, str]:
        if name not in USERS:
            raise KeyError(name)
        return {"name": name, "full_name": USERS[name], "data": "twisted"}

    return task.deferLater(reactor, 0.01, find)


class Greeting(Resource):
    """The handler, callback style."""

    isLeaf = True

    def __init__(self, lookup: Callable[[str], Deferred]) -> None:
        super().__init__()
        self.lookup = lookup

    def render_GET(self, request: Any) -> Any:
        name = request.args.get(b"name", [b"ada"])[0].decode()
        request.setHeader(b"content-type", b"application/json")

        def found(user: dict[str, str]) -> None:
            body = {
                "greeting": f"Hello, {user['full_name']}!",
                "handler": "twisted",
                "data": user["data"],
            }
            request.write(json.dumps(body).encode())

        def missing(failure: Any) -> None:
            failure.trap(KeyError)
            request.setResponseCode(404)
            request.write(json.dumps({"error": f"no user {name!r}", "handler": "twisted"}).encode())

        d = self.lookup(name)
        d.addCallbacks(found, missing)
        d.addBoth(lambda _: request.finish())
        return NOT_DONE_YET


def make_site(
    lookup: Callable[[str], Deferred] = lookup_user, greet: Resource | None = None
) -> Site:
    root = Resource()
    root.putChild(b"greet", greet if greet is not None else Greeting(lookup))
    return Site(root)
