"""What the steps share: their command line, and what ``--self-test`` checks.

The client is ``urllib`` in a worker thread, so it shares nothing with the
event loop of the service it tests.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any


def options(doc: str | None) -> tuple[int, bool]:
    """The steps' command line: ``--port N`` to serve on, or ``--self-test`` on a free port."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--self-test", action="store_true", help="serve on a free port, check, exit"
    )
    args = parser.parse_args()
    return (0 if args.self_test else args.port), args.self_test


def fetch(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url``; return the status and the decoded JSON body (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check(port: int, handler: str, data: str) -> bool:
    """Ask for a known and an unknown user; print what came back; True when both are right."""
    base = f"http://127.0.0.1:{port}/greet"
    expected = [
        (
            f"{base}?name=ada",
            200,
            {"greeting": "Hello, Ada Lovelace!", "handler": handler, "data": data},
        ),
        (f"{base}?name=nobody", 404, {"error": "no user 'nobody'", "handler": handler}),
    ]
    ok = True
    for url, status, body in expected:
        got = fetch(url)
        passed = got == (status, body)
        ok = ok and passed
        print(f"{'ok  ' if passed else 'FAIL'} GET {url} -> {got[0]} {json.dumps(got[1])}")
        if not passed:
            print(f"     expected {status} {json.dumps(body)}")
    print("self-test passed" if ok else "self-test FAILED", flush=True)
    return ok
