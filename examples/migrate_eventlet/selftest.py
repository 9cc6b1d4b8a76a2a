"""What the steps share: their command line, and what ``--self-test`` asks the service.

The client is ``urllib``; after ``eventlet.monkey_patch()`` it is green, so
each step runs it in a greenthread.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable


def options(doc: str | None) -> tuple[int, bool]:
    """``--port N`` to serve on, or ``--self-test`` on a free port."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--self-test", action="store_true", help="serve, check, exit 0 or 1")
    args = parser.parse_args()
    return (0 if args.self_test else args.port), args.self_test


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check(port: int, handler: str, data: str) -> bool:
    """A known and an unknown user; True when both answers are right."""
    base = f"http://127.0.0.1:{port}/greet"
    expected = {
        f"{base}?name=ada": (
            200,
            {"greeting": "Hello, Ada Lovelace!", "handler": handler, "data": data},
        ),
        f"{base}?name=nobody": (404, {"error": "no user 'nobody'"}),
    }
    ok = True
    for url, want in expected.items():
        got = _get(url)
        ok = ok and got == want
        print(f"{'ok  ' if got == want else 'FAIL'} GET {url} -> {got}; expected {want}")
    print("self-test passed" if ok else "self-test FAILED", flush=True)
    return ok


def run_on_hub(serve: Callable[[int, bool], Awaitable[bool]], doc: str | None) -> int:
    """The steps on the hub: ``bridges.run(serve, port, self_test)``; exit status 0 or 1."""
    import bridges

    port, self_test = options(doc)
    try:
        ok = bridges.run(serve, port, self_test, frameworks=["eventlet"])
    except KeyboardInterrupt:
        return 0
    return 0 if ok is not False else 1
