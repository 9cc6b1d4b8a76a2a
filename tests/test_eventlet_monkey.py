"""eventlet.monkey_patch() before bridges.run, each in a fresh interpreter (it cannot be undone)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from _gevent_helpers import run_script

pytest.importorskip("eventlet")

PATCHED = """\
import eventlet

eventlet.monkey_patch()

import asyncio
import json
import time

import eventlet.wsgi
from eventlet.patcher import original

import bridges

LOOP = {loop!r}
real_threading = original("threading")
"""


def run_patched(tmp_path: Path, body: str, loop: str | None = None) -> Any:
    return run_script(tmp_path, PATCHED.format(loop=loop) + textwrap.dedent(body))


SERVE = """
def app(environ, start_response):
    time.sleep(0.001)  # patched: a green sleep
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"patched hello"]


async def serve_once():
    listener = eventlet.listen(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    server.kill()
    return body.decode().rsplit("\\r\\n", 1)[-1]
"""


@pytest.mark.parametrize("loop", [None, "uvloop"], ids=["stdlib", "uvloop"])
def test_an_eventlet_wsgi_server_answers_after_monkey_patch(tmp_path: Path, loop: Any) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    body = (
        SERVE
        + """
async def main():
    return {"body": await serve_once()}

print(json.dumps(bridges.run(main, frameworks=["eventlet"], loop_factory=LOOP)))
"""
    )
    assert run_patched(tmp_path, body, loop) == {"body": "patched hello"}


def test_the_hubs_executor_keeps_real_threads_after_monkey_patch(tmp_path: Path) -> None:
    # Two jobs that can only finish together: the first waits (on a real
    # Event, bounded) for the second to set it.  Green "threads" would run
    # them one after the other, and the first would time out.
    body = """
async def main():
    gate = real_threading.Event()
    loop = asyncio.get_running_loop()

    def first():
        return gate.wait(20)

    def second():
        gate.set()
        return real_threading.get_ident()

    both = await asyncio.gather(
        loop.run_in_executor(None, first), loop.run_in_executor(None, second)
    )
    ident = await asyncio.to_thread(real_threading.get_ident)
    return {"parallel": both[0], "other_thread": ident != real_threading.get_ident()}

print(json.dumps(bridges.run(main, frameworks=["eventlet"])))
"""
    assert run_patched(tmp_path, body) == {"parallel": True, "other_thread": True}


def test_greenthreads_are_on_the_hubs_thread_after_monkey_patch(tmp_path: Path) -> None:
    # Patched threading.get_ident() is per greenthread; the hub must still see
    # its own thread, so that report() from a greenthread is not deferred as
    # if it came from another thread.
    body = """
seen = []

async def main():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: seen.append(context["message"]))
    hub = bridges.current_hub()

    def report_and_look():
        hub.report(ValueError("from a greenthread"), "reported")
        return list(seen)

    return {"seen_at_once": await bridges.awaitable(eventlet.spawn(report_and_look))}

print(json.dumps(bridges.run(main, frameworks=["eventlet"])))
"""
    assert run_patched(tmp_path, body) == {"seen_at_once": ["reported"]}


def test_monkey_patched_eventlet_beside_gevent_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("gevent")
    body = """
async def main():
    return "attached"

try:
    bridges.run(main, frameworks=["gevent", "eventlet"])
except bridges.BridgeError as exc:
    print(json.dumps({"error": type(exc).__name__, "says": "eventlet.monkey_patch()" in str(exc)}))
"""
    assert run_patched(tmp_path, body) == {"error": "MixedPatchingError", "says": True}


def test_eventlet_in_a_process_gevent_patched_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("gevent")
    source = """\
from gevent import monkey

monkey.patch_all()

import json

import bridges


async def main():
    return "attached"


try:
    bridges.run(main, frameworks=["eventlet"])
except bridges.BridgeError as exc:
    says = "gevent.monkey.patch_all()" in str(exc)
    print(json.dumps({"error": type(exc).__name__, "says": says}))
"""
    assert run_script(tmp_path, source) == {"error": "MixedPatchingError", "says": True}


def test_doctor_names_eventlet_and_its_monkey_patching(tmp_path: Path) -> None:
    body = """
import io

from bridges._doctor import doctor

out = io.StringIO()
status = doctor(out)
lines = out.getvalue().splitlines()
print(json.dumps({
    "status": status,
    "framework": [line.split()[0] + " " + line.split()[-1] for line in lines
                  if line.strip().startswith("eventlet ")],
    "conflict": any("eventlet monkey-patching is active" in line for line in lines),
}))
"""
    result = run_patched(tmp_path, body)
    assert result == {"status": 0, "framework": ["eventlet attaches"], "conflict": True}


# -- portals after monkey_patch(): legacy blocking code called from coroutines -----------

LEGACY = """
import contextvars
import queue
import socket
import threading

var = contextvars.ContextVar("var", default="unset")


def legacy(port):
    # unchanged legacy code: patched time.sleep, socket, threading and queue
    time.sleep(0.05)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"ping")
        reply = conn.recv(16).decode()
    results = queue.Queue()
    threading.Thread(target=lambda: (time.sleep(0.01), results.put("threaded"))).start()
    return reply, results.get(timeout=10)


async def echo_upper(reader, writer):
    writer.write((await reader.read(16)).upper())
    await writer.drain()
    writer.close()


async def count_ticks(ticks, stop):
    while not stop.is_set():
        await asyncio.sleep(0.005)
        ticks[0] += 1


async def handler(port):
    task = asyncio.current_task()
    var.set("handler")
    reply, threaded = legacy(port)
    return [reply, threaded, asyncio.current_task() is task, var.get()]


async def main():
    server = await asyncio.start_server(echo_upper, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ticks, stop = [0], asyncio.Event()
    ticking = asyncio.create_task(count_ticks(ticks, stop))
    results = await asyncio.gather(handler(port), handler(port))
    stop.set()
    await ticking
    server.close()
    return {"results": results, "ticked": ticks[0] >= 3}

print(json.dumps(bridges.run(main, frameworks=["eventlet"], loop_factory=LOOP)))
"""


@pytest.mark.parametrize("loop", [None, "uvloop"], ids=["stdlib", "uvloop"])
def test_async_handlers_call_patched_legacy_code_and_only_their_task_waits(
    tmp_path: Path, loop: Any
) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    assert run_patched(tmp_path, LEGACY, loop) == {
        "results": [["PING", "threaded", True, "handler"]] * 2,
        "ticked": True,
    }


def test_a_patched_blocking_call_from_a_loop_callback_still_raises(tmp_path: Path) -> None:
    body = """
async def main():
    loop = asyncio.get_running_loop()
    outcome = loop.create_future()

    def callback():
        try:
            time.sleep(0.01)  # patched: an eventlet blocking call
        except bridges.BridgeError as exc:
            outcome.set_result(type(exc).__name__)
        else:
            outcome.set_result("slept")

    loop.call_soon(callback)
    return {"callback": await outcome}

print(json.dumps(bridges.run(main, frameworks=["eventlet"])))
"""
    assert run_patched(tmp_path, body) == {"callback": "HubOwnsLoopError"}
