"""What the steps share: the command line, serving with ``reactor.run()``, the self-test.

Only the migration differs between two steps; this plumbing is here once.
The self-test client is ``urllib`` in a worker thread, so it shares nothing
with the event loop of the service it tests.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any, Callable


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


def serve(doc: str, make_site: Callable[[], Any], checks: list[tuple[str, str, str]]) -> int:
    """Serve the site until Ctrl-C/SIGTERM; with ``--self-test``, check it and stop.

    ``checks`` are ``(path, handler, data)``: the answers expected at each path.
    The reactor is imported here, when the step runs: after step 2's install().
    """
    port, self_test = options(doc)
    from twisted.internet import reactor, threads

    listening = reactor.listenTCP(port, make_site(), interface="127.0.0.1")
    port = listening.getHost().port
    print(f"{doc.splitlines()[0]}\n  http://127.0.0.1:{port}/greet?name=ada", flush=True)
    outcome = {"ok": True}
    if self_test:
        # The client blocks, so it runs in a thread; then the reactor stops.
        # Every check runs (and prints) even after one failed.
        d = threads.deferToThread(lambda: all([check(port, *each) for each in checks]))  # noqa: C419
        d.addCallback(lambda ok: outcome.update(ok=ok))
        d.addErrback(lambda failure: outcome.update(ok=False) or failure.printTraceback())
        d.addBoth(lambda _: reactor.stop())
    reactor.run()
    if self_test:
        print("self-test passed" if outcome["ok"] else "self-test FAILED", flush=True)
    return 0 if outcome["ok"] else 1


def check(port: int, path: str, handler: str, data: str) -> bool:
    """Ask ``path`` for a known and an unknown user; print what came back; True if both right."""
    base = f"http://127.0.0.1:{port}/{path}"
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
    return ok
