"""A plain WSGI app on gevent's pywsgi that calls an asyncio client library through ``bg.wait``.

    python app.py [--port 8000]     # then: curl -s http://127.0.0.1:8000/hits/home
    python app.py --self-test       # 20 concurrent real requests, exit 0 or 1

``GET /hits/<page>`` counts a visit in the asyncio key-value store and
returns the new count.  The WSGI app is ordinary blocking-style gevent code:
``bg.wait(kv.incr(...))`` blocks only the request's greenlet while the asyncio
client does its I/O on the same loop, in the same thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import kvstore

import bridges


def make_app(kv: kvstore.KVClient) -> Callable[..., Iterable[bytes]]:
    from bridges import gevent as bg

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        if not path.startswith("/hits/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"try /hits/<page>\n"]
        page = path[len("/hits/") :]
        hits = bg.wait(kv.incr(f"hits:{page}"))  # blocks this greenlet only
        body = {"page": page, "hits": hits, "thread": threading.get_ident()}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode() + b"\n"]

    return app


def self_test(port: int, requests: int = 20) -> bool:
    """Real HTTP clients in threads: every request is counted exactly once."""
    url = f"http://127.0.0.1:{port}/hits/self-test"

    def get(_: int) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(get, range(requests)))
    counts = sorted(answer["hits"] for answer in answers)
    threads = {answer["thread"] for answer in answers}
    ok = counts == list(range(1, requests + 1)) and len(threads) == 1
    print(f"{'ok  ' if ok else 'FAIL'} {requests} concurrent requests counted {counts}")
    print(f"{'ok  ' if len(threads) == 1 else 'FAIL'} all served on one thread: {threads}")
    print("self-test passed" if ok else "self-test FAILED", flush=True)
    return ok


async def serve(port: int, run_self_test: bool) -> bool:
    import gevent
    from gevent.pywsgi import WSGIServer

    kv_server = await kvstore.start_server()
    kv = await kvstore.KVClient.connect("127.0.0.1", kv_server.sockets[0].getsockname()[1])
    wsgi = WSGIServer(("127.0.0.1", port), make_app(kv), log=None)
    # start() may block (it looks up the host name): blocking gevent calls run in a
    # greenlet, never straight in a coroutine. Awaiting the greenlet waits for it.
    await bridges.awaitable(gevent.spawn(wsgi.start))
    print(f"gevent WSGI on the hub: http://127.0.0.1:{wsgi.server_port}/hits/home", flush=True)
    try:
        if run_self_test:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self_test, wsgi.server_port)
        await asyncio.get_running_loop().create_future()  # serve until Ctrl-C / SIGTERM
        return True
    finally:
        wsgi.close()
        await kv.close()
        kv_server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--self-test", action="store_true", help="serve on a free port, check, exit"
    )
    args = parser.parse_args()
    try:
        ok = bridges.run(
            serve, 0 if args.self_test else args.port, args.self_test, frameworks=["gevent"]
        )
    except KeyboardInterrupt:
        return 0
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
