"""A Flask app mixing monkey-patched `requests`, gevent and asyncio, as a migrating service does."""

from gevent import monkey

monkey.patch_all()

import asyncio  # noqa: E402 - after patching, as gevent requires
import os  # noqa: E402

import flask  # noqa: E402
import gevent  # noqa: E402
import requests  # noqa: E402

from bridges import gevent as bg  # noqa: E402

app = flask.Flask(__name__)
_blocking_sleep = monkey.get_original("time", "sleep")


async def asyncio_lookup(key: str) -> str:
    await asyncio.sleep(0.005)
    return key.upper()


@app.route("/mixed")
def mixed() -> dict:
    upstream = requests.get(flask.request.args["upstream"], timeout=10)
    return {
        "upstream": upstream.text,
        "asyncio": bg.wait(asyncio_lookup("key")),
        "pid": os.getpid(),
    }


def mark_started() -> None:
    """Tell the test (through a file) that a request reached a view."""
    if os.environ.get("INFLIGHT_DIR"):
        with open(os.path.join(os.environ["INFLIGHT_DIR"], os.urandom(8).hex()), "w"):
            pass


@app.route("/slow")
def slow() -> dict:
    mark_started()
    gevent.sleep(float(flask.request.args.get("seconds", "1")))
    return {"pid": os.getpid(), "slept": True}


@app.route("/block-the-loop")
def block_the_loop() -> dict:
    _blocking_sleep(float(flask.request.args.get("seconds", "30")))
    return {"pid": os.getpid()}


@app.route("/pid")
def pid() -> dict:
    return {"pid": os.getpid()}


_concurrency = {"now": 0, "max": 0}


@app.route("/concurrent")
def concurrent() -> dict:
    _concurrency["now"] += 1
    _concurrency["max"] = max(_concurrency["max"], _concurrency["now"])
    try:
        gevent.sleep(float(flask.request.args.get("seconds", "0.3")))
    finally:
        _concurrency["now"] -= 1
    return {"pid": os.getpid()}


@app.route("/max-concurrency")
def max_concurrency() -> dict:
    return {"pid": os.getpid(), "max": _concurrency["max"]}
