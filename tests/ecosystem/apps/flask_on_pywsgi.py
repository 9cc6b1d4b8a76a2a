"""Flask on gevent's pywsgi after ``patch_all()``, on the hub, calling out with ``requests``.

Each request to ``/outer/<n>`` makes a second request, with the monkey-patched
``requests``, to ``/inner/<n>`` of the same server, which waits on
``gevent.sleep`` and then on an asyncio coroutine (``bg.wait``).  Fifty outer
requests run at once from greenlets; the inner ones must overlap.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import asyncio  # noqa: E402
import json  # noqa: E402

import flask  # noqa: E402
import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import bridges  # noqa: E402
from bridges import gevent as bg  # noqa: E402

app = flask.Flask(__name__)
in_flight = {"now": 0, "most": 0}


async def from_asyncio(n: int) -> str:
    await asyncio.sleep(0.01)
    return f"asyncio {n}"


@app.route("/inner/<int:n>")
def inner(n: int) -> dict[str, object]:
    in_flight["now"] += 1
    in_flight["most"] = max(in_flight["most"], in_flight["now"])
    try:
        gevent.sleep(0.02)
        return {"n": n, "said": bg.wait(from_asyncio(n))}
    finally:
        in_flight["now"] -= 1


@app.route("/outer/<int:n>")
def outer(n: int) -> dict[str, object]:
    port = flask.request.environ["SERVER_PORT"]
    answer = requests.get(f"http://127.0.0.1:{port}/inner/{n}", timeout=10)
    return {"outer": n, "inner": answer.json()}


def fetch_all(port: int) -> list[dict[str, object]]:
    with requests.Session() as session:

        def one(n: int) -> dict[str, object]:
            return session.get(f"http://127.0.0.1:{port}/outer/{n}", timeout=20).json()

        greenlets = [gevent.spawn(one, n) for n in range(50)]
        gevent.joinall(greenlets, raise_error=True, timeout=30)
        return [g.value for g in greenlets]


async def main() -> dict[str, object]:
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    await bridges.awaitable(gevent.spawn(server.start))
    try:
        answers = await bridges.awaitable(gevent.spawn(fetch_all, server.server_port))
    finally:
        await bridges.awaitable(gevent.spawn(server.stop, timeout=5))
    return {"answers": answers, "most_in_flight": in_flight["most"]}


if __name__ == "__main__":
    print(json.dumps(bridges.run(main, frameworks=["gevent"])))
