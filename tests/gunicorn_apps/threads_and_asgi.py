"""Apps for the worker without gevent: a WSGI app (run in threads) and a bare ASGI app."""

import asyncio
import json
import os
import threading
import time

_in_views = {"now": 0, "max": 0}
_lock = threading.Lock()


def mark_started() -> None:
    """Tell the test (through a file) that a request reached the app."""
    if os.environ.get("INFLIGHT_DIR"):
        with open(os.path.join(os.environ["INFLIGHT_DIR"], os.urandom(8).hex()), "w"):
            pass


def wsgi(environ, start_response):
    mark_started()
    with _lock:
        _in_views["now"] += 1
        _in_views["max"] = max(_in_views["max"], _in_views["now"])
    try:
        time.sleep(float(environ.get("QUERY_STRING") or 0))  # blocks its own thread only
    finally:
        with _lock:
            _in_views["now"] -= 1
    body = {
        "pid": os.getpid(),
        "main_thread": threading.current_thread() is threading.main_thread(),
        "max": _in_views["max"],
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    mark_started()
    _in_views["now"] += 1
    _in_views["max"] = max(_in_views["max"], _in_views["now"])
    try:
        await asyncio.sleep(float(scope["query_string"] or 0))
    finally:
        _in_views["now"] -= 1
    body = {
        "pid": os.getpid(),
        "asgi": True,
        "main_thread": threading.current_thread() is threading.main_thread(),
        "loop": type(asyncio.get_running_loop()).__module__,
        "max": _in_views["max"],
    }
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
