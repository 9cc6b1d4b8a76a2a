"""Portals after ``gevent.monkey.patch_all()``: legacy blocking code called from coroutines.

``patch_all`` cannot be undone in a process: each test runs in a fresh one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _gevent_helpers import run_patched

pytestmark = pytest.mark.timeout(120)

UVLOOP_PRIMER = """
# uvloop learns the main thread's id from threading on first use (docs/gevent.md).
import signal, uvloop
primer = uvloop.new_event_loop()
primer.add_signal_handler(signal.SIGUSR2, lambda: None)
primer.close()
"""


@pytest.fixture(params=[None, "uvloop"], ids=["asyncio", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> str | None:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return request.param  # type: ignore[no-any-return]


def primer(loop_factory: str | None) -> str:
    return UVLOOP_PRIMER if loop_factory == "uvloop" else ""


def test_an_async_handler_calls_legacy_requests_code_while_other_tasks_keep_their_latency(
    tmp_path: Path, loop_factory: str | None
) -> None:
    pytest.importorskip("requests")
    outcome = run_patched(
        tmp_path,
        before_patch=primer(loop_factory),
        body=f"""
        import asyncio, threading, time
        from http.server import BaseHTTPRequestHandler, HTTPServer
        import requests
        import bridges

        class Slow(BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(0.1)  # a patched sleep: only this request's greenlet waits
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        def legacy_fetch(session, url):
            # unchanged legacy code: patched requests and time.sleep
            time.sleep(0.05)
            return session.get(url, timeout=10).text

        async def ticker(gaps, stop):
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        async def handler(session, url):
            task = asyncio.current_task()
            text = legacy_fetch(session, url)
            return text, asyncio.current_task() is task

        async def main():
            server = HTTPServer(("127.0.0.1", 0), Slow)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = "http://127.0.0.1:%d" % server.server_port
            gaps, stop = [], asyncio.Event()
            ticking = asyncio.create_task(ticker(gaps, stop))
            with requests.Session() as session:
                results = await asyncio.gather(
                    *(handler(session, url + "/" + str(i)) for i in range(5))
                )
            stop.set()
            await ticking
            server.shutdown()
            return [results, max(gaps)]

        results, gap = bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})
        print(json.dumps([results, gap]))
        """,
    )
    results, gap = outcome
    assert results == [[f"/{i}", True] for i in range(5)]
    # Each legacy call blocks 0.15 s; a stalled loop would show gaps that long.
    assert gap < 0.1


def test_a_flask_app_on_pywsgi_mixes_patched_requests_and_asyncio_under_50_clients(
    tmp_path: Path, loop_factory: str | None
) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("requests")
    outcome = run_patched(
        tmp_path,
        before_patch=primer(loop_factory),
        body=f"""
        import asyncio, time
        import flask, requests
        from gevent import pywsgi
        import bridges
        from bridges import gevent as bg

        backend = flask.Flask("backend")

        @backend.route("/item/<int:n>")
        def item(n):
            time.sleep(0.01)
            return str(n * 2)

        app = flask.Flask("front")

        async def from_asyncio(n):
            await asyncio.sleep(0.01)
            return n + 1

        @app.route("/mix/<int:n>")
        def mix(n):
            doubled = requests.get(app.config["BACKEND"] + "/item/%d" % n, timeout=10).text
            plus_one = bg.wait(from_asyncio(n))
            return "%s,%d" % (doubled, plus_one)

        async def client(port, n):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /mix/%d HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n" % n)
            data = await reader.read()
            writer.close()
            return data.split(b"\\r\\n\\r\\n", 1)[1].decode()

        async def main():
            back = pywsgi.WSGIServer(("127.0.0.1", 0), backend, log=None)
            back.start()
            app.config["BACKEND"] = "http://127.0.0.1:%d" % back.server_port
            front = pywsgi.WSGIServer(("localhost", 0), app, log=None)
            front.start()  # resolves "localhost": a blocking call, from a coroutine
            try:
                replies = await asyncio.wait_for(
                    asyncio.gather(*(client(front.server_port, n) for n in range(50))), 60
                )
            finally:
                front.stop()
                back.stop()
            return replies

        print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})))
        """,
    )
    assert outcome == [f"{n * 2},{n + 1}" for n in range(50)]


def test_time_sleep_and_patched_sockets_in_a_task_keep_the_task(
    tmp_path: Path, loop_factory: str | None
) -> None:
    outcome = run_patched(
        tmp_path,
        before_patch=primer(loop_factory),
        body=f"""
        import asyncio, contextvars, socket, time
        import bridges

        var = contextvars.ContextVar("var")

        async def main():
            task = asyncio.current_task()
            var.set("mine")
            time.sleep(0.01)
            left, right = socket.socketpair()
            with left, right:
                left.sendall(b"ping")
                data = right.recv(4)
            return [data.decode(), asyncio.current_task() is task, var.get()]

        print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})))
        """,
    )
    assert outcome == ["ping", True, "mine"]


def test_asyncio_create_subprocess_exec_works_after_patch_all(
    tmp_path: Path, loop_factory: str | None
) -> None:
    outcome = run_patched(
        tmp_path,
        before_patch=primer(loop_factory),
        body=f"""
        import asyncio
        import bridges

        async def main():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "print('child'); raise SystemExit(3)",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            return [out.decode().strip(), proc.returncode]

        print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})))
        """,
    )
    assert outcome == ["child", 3]


def test_asyncios_child_watcher_is_given_back_when_the_hub_stops(tmp_path: Path) -> None:
    # The hub answers asyncio's child watcher from gevent's loop while it runs
    # (gevent's patched waitpid would block in a loop callback); no global
    # effect outlives the hub.
    outcome = run_patched(
        tmp_path,
        body="""
        import asyncio, warnings
        import bridges

        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()
        before = policy.get_child_watcher()

        async def main():
            return type(policy.get_child_watcher()).__name__

        during = bridges.run(main, frameworks=["gevent"])
        print(json.dumps([type(before).__name__, during, policy.get_child_watcher() is before]))
        """,
    )
    assert outcome[1] == "GeventChildWatcher"
    assert outcome[0] != "GeventChildWatcher"
    assert outcome[2] is True


def test_cancelling_a_task_in_time_sleep_after_patch_all(tmp_path: Path) -> None:
    outcome = run_patched(
        tmp_path,
        body="""
        import asyncio, time
        import bridges

        async def main():
            events = []

            async def sleeper():
                try:
                    time.sleep(10)
                finally:
                    events.append("finally")

            task = asyncio.create_task(sleeper())
            await asyncio.sleep(0.02)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                events.append("cancelled")
            return events

        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome == ["finally", "cancelled"]
