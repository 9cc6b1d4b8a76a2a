"""The eventlet service being migrated: a WSGI app on ``eventlet.wsgi`` with a green data layer.

``GET /greet?name=ada`` answers ``{"greeting": ..., "handler": ..., "data": ...}``;
an unknown name is a 404.  This file is never edited by the migration.
"""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import parse_qs

import eventlet

USERS = {"ada": "Ada Lovelace", "grace": "Grace Hopper"}
_pool = eventlet.GreenPool(100)


def lookup_user(name: str) -> str:
    """The data layer: green I/O (a sleep stands in for a database call)."""
    eventlet.sleep(0.005)
    if name not in USERS:
        raise KeyError(name)
    return USERS[name]


def respond(start_response: Any, status: str, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def make_app(greet: Callable[[str], dict[str, Any]]) -> Callable[..., list[bytes]]:
    """A WSGI app whose ``/greet`` calls ``greet(name)`` (KeyError: 404)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        name = parse_qs(environ.get("QUERY_STRING", "")).get("name", [""])[0]
        try:
            return respond(start_response, "200 OK", greet(name))
        except KeyError:
            return respond(start_response, "404 Not Found", {"error": f"no user {name!r}"})

    return app


def legacy_greet(name: str) -> dict[str, Any]:
    """The old handler: blocking style, in the request's greenthread."""
    full = _pool.spawn(lookup_user, name).wait()
    return {"greeting": f"Hello, {full}!", "handler": "eventlet", "data": "eventlet"}
