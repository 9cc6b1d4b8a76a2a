"""bridges.gunicorn under a real gunicorn master with real workers, on 127.0.0.1.

Every process is started in its own session and killed with it at the end;
every wait is bounded; load loops are bounded by a request count and a stop.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "gunicorn.asgi.protocol", reason="needs gunicorn >= 25 (pip install '.[gunicorn]')"
)
pytest.importorskip("flask")
pytest.importorskip("requests")
pytest.importorskip("a2wsgi")

from _gunicorn_helpers import STOCK_BOOT, Gunicorn, Load, free_port, get

pytestmark = pytest.mark.timeout(120)


def wait_until(condition, server: Gunicorn, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.02)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "gunicorn.log"


@pytest.fixture
def upstream():
    """A plain threaded HTTP server the Flask views call with monkey-patched `requests`."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "8")
            self.end_headers()
            self.wfile.write(b"upstream")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_two_workers_serve_a_flask_app_mixing_patched_requests_and_asyncio(log, upstream) -> None:
    with Gunicorn("flask_mixed:app", log_path=log).start(workers=2) as server:
        load = Load(server.port, f"/mixed?upstream={upstream}", clients=8, limit=10)
        outcomes = load.finish()
        workers = set(server.serving_pids())
    assert len(outcomes) == 80
    assert [o.error for o in outcomes if o.error] == []
    assert {o.body["upstream"] for o in outcomes} == {"upstream"}
    assert {o.body["asyncio"] for o in outcomes} == {"KEY"}
    assert {o.body["pid"] for o in outcomes} == workers  # both workers took their share


def test_an_asgi_app_awaits_a_deferred_and_a_greenlet_beside_tornado_and_twisted_listeners(
    log,
) -> None:
    tornado_port, twisted_port = free_port(), free_port()
    with Gunicorn(
        "asgi_mixed:app",
        frameworks="gevent,tornado,twisted",
        binds=(f"127.0.0.1:{tornado_port}", f"127.0.0.1:{twisted_port}"),
        env={
            "TORNADO_ADDR": f"127.0.0.1:{tornado_port}",
            "TWISTED_ADDR": f"127.0.0.1:{twisted_port}",
        },
        log_path=log,
    ).start(workers=2) as server:
        workers = set(server.serving_pids())
        asgi = [get(server.port, "/hello") for _ in range(6)]
        tornado = [get(tornado_port, "/") for _ in range(6)]
        twisted = [get(twisted_port, "/") for _ in range(6)]
    assert {status for status, _ in asgi + tornado + twisted} == {200}
    for _, body in asgi:
        assert body["twisted"] == "twisted"
        assert body["gevent"] == "gevent"
        assert body["started"] == ["TORNADO_ADDR", "TWISTED_ADDR"]  # lifespan state reaches scopes
    assert {body["server"] for _, body in tornado} == {"tornado"}
    assert {body["server"] for _, body in twisted} == {"twisted"}
    # The claimed sockets are pre-forked: every worker's Tornado and Twisted serve them.
    assert {body["pid"] for _, body in tornado + twisted + asgi} <= workers


def test_a_wsgi_app_starts_its_own_twisted_listener_from_a_startup_hook(log) -> None:
    twisted_port = free_port()
    with Gunicorn(
        "startup_hook:app",
        frameworks="gevent,twisted",
        binds=(f"127.0.0.1:{twisted_port}",),
        env={"TWISTED_ADDR": f"127.0.0.1:{twisted_port}"},
        log_path=log,
        workers=1,
    ).start(workers=1) as server:
        status, wsgi = get(server.port, "/")
        twisted_status, twisted = get(twisted_port, "/")
    assert (status, twisted_status) == (200, 200)
    assert wsgi == {"server": "wsgi", "pid": twisted["pid"]}
    assert twisted["server"] == "twisted"


def test_kill_9_of_one_worker_mid_load_fails_no_request_of_the_surviving_worker(log) -> None:
    with Gunicorn("flask_mixed:app", log_path=log).start(workers=2) as server:
        victim, survivor = server.serving_pids()
        load = Load(server.port, "/slow?seconds=0.05", clients=6)
        load.wait_served(40)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        server.wait_for(r"Hub worker serving", count=3)  # gunicorn respawned it
        served = load.served()
        load.wait_served(served + 40)
        outcomes = load.stop()
    failed = [o for o in outcomes if o.error is not None]
    # Only requests in flight on the killed worker may fail: started before the kill, at
    # most one per client.
    assert all(o.started <= killed_at for o in failed), failed
    assert len(failed) <= 6
    assert all(o.status == 200 for o in outcomes if o.error is None)
    assert survivor in {o.body["pid"] for o in outcomes if o.started > killed_at and o.body}


def test_sighup_reload_under_load_loses_no_request(log) -> None:
    with Gunicorn("flask_mixed:app", log_path=log).start(workers=2) as server:
        old = set(server.serving_pids())
        load = Load(server.port, "/slow?seconds=0.05", clients=6)
        load.wait_served(30)
        server.signal(signal.SIGHUP)
        new = server.wait_for(r"Hub worker serving \(pid: (\d+)", count=4)[2:]
        server.wait_for(r"Worker exiting \(pid: (\d+)", count=2)
        served = load.served()
        load.wait_served(served + 40)
        outcomes = load.stop()
        errors = server.worker_exit_errors()
    assert [o.error for o in outcomes if o.error] == []
    assert all(o.status == 200 for o in outcomes)
    assert {int(pid) for pid in new}.isdisjoint(old)
    assert errors == []


@pytest.mark.parametrize(
    ("app", "path", "options"),
    [
        pytest.param(
            "flask_mixed:app",
            "/slow?seconds=1.5",
            ("--bridges-frameworks", "gevent"),
            id="WSGI in greenlets",
        ),
        pytest.param(
            "threads_and_asgi:wsgi",
            "/?1.5",
            ("--bridges-frameworks", "none", "--threads", "6"),
            id="WSGI in threads",
        ),
        pytest.param("threads_and_asgi:asgi", "/?1.5", ("--bridges-frameworks", "none"), id="ASGI"),
    ],
)
def test_sigterm_answers_every_request_in_flight_then_exits_0(
    log, tmp_path, app, path, options
) -> None:
    inflight = tmp_path / "inflight"
    inflight.mkdir()
    with Gunicorn(
        app, *options, frameworks=None, log_path=log, env={"INFLIGHT_DIR": str(inflight)}
    ).start(workers=2) as server:
        results: list[tuple[int, dict]] = []
        clients = [
            threading.Thread(target=lambda: results.append(get(server.port, path)))
            for _ in range(6)
        ]
        for client in clients:
            client.start()
        wait_until(lambda: len(list(inflight.iterdir())) == 6, server)  # all in views
        server.signal(signal.SIGTERM)
        code = server.wait_exit(timeout=30)
        for client in clients:
            client.join(timeout=30)
        errors = server.worker_exit_errors()
    assert code == 0, server.output()
    assert [status for status, _ in results] == [200] * 6
    assert errors == []


def test_sigquit_quits_a_worker_at_once_with_exit_0_and_it_is_respawned(log, tmp_path) -> None:
    inflight = tmp_path / "inflight"
    inflight.mkdir()
    with Gunicorn(
        "flask_mixed:app", log_path=log, workers=1, env={"INFLIGHT_DIR": str(inflight)}
    ).start(workers=1) as server:
        (worker,) = server.serving_pids()
        outcome: list[object] = []

        def in_flight() -> None:
            try:
                outcome.append(get(server.port, "/slow?seconds=90", timeout=100))
            except OSError as exc:
                outcome.append(exc)

        client = threading.Thread(target=in_flight)
        client.start()
        wait_until(lambda: list(inflight.iterdir()), server)
        os.kill(worker, signal.SIGQUIT)
        client.join(timeout=30)  # the quick exit does not wait for the 90 s view
        server.wait_for(r"Hub worker serving", count=2)
        status, body = get(server.port, "/pid")
        errors = server.worker_exit_errors()
    assert not client.is_alive()
    # Cut short (the view's greenlet killed by the hub's stop sequence: a 500, or the
    # connection closed), not answered after 90 s.
    assert isinstance(outcome[0], OSError) or outcome[0][0] == 500
    assert (status, body["pid"] != worker) == (200, True)
    assert errors == []


def test_sigquit_while_a_worker_boots_exits_it_cleanly_and_it_is_respawned(log, tmp_path) -> None:
    markers = tmp_path / "booting"
    markers.mkdir()
    with Gunicorn(
        "slow_boot:app",
        log_path=log,
        workers=1,
        env={"BOOT_MARKER_DIR": str(markers), "BOOT_SECONDS": "1.5"},
    ) as server:
        wait_until(lambda: list(markers.iterdir()), server, timeout=60)
        (booting,) = [int(path.name) for path in markers.iterdir()]
        os.kill(booting, signal.SIGQUIT)  # while it imports the app
        server.start(workers=1)
        status, body = get(server.port, "/")
        errors = server.worker_exit_errors()
    assert booting not in server.serving_pids()  # it never served
    assert (status, body["pid"] != booting) == (200, True)
    assert errors == []  # exit 0: not gunicorn's 255 of a worker that crashed


def test_a_loop_blocked_by_a_view_stops_the_heartbeat_and_gunicorn_replaces_the_worker(log) -> None:
    with Gunicorn("flask_mixed:app", "--timeout", "2", log_path=log, workers=1).start(
        workers=1
    ) as server:
        (blocked,) = server.serving_pids()
        with pytest.raises(OSError):
            get(server.port, "/block-the-loop?seconds=60", timeout=30)
        server.wait_for(rf"WORKER TIMEOUT \(pid:{blocked}\)")
        server.wait_for(r"Hub worker serving", count=2)
        status, body = get(server.port, "/pid")
    assert (status, body["pid"] != blocked) == (200, True)


def test_max_requests_with_jitter_restarts_the_worker_without_losing_a_request(log) -> None:
    with Gunicorn(
        "flask_mixed:app",
        "--max-requests",
        "4",
        "--max-requests-jitter",
        "2",
        log_path=log,
        workers=1,
    ).start(workers=1) as server:
        answers = [get(server.port, "/pid") for _ in range(14)]
        restarts = server.output().count("Autorestarting worker after current request.")
    assert {status for status, _ in answers} == {200}
    pids = [body["pid"] for _, body in answers]
    assert len(set(pids)) >= 2
    assert restarts >= 1
    # Between 4 and 6 requests per worker life (max_requests + jitter), the last may be cut short.
    runs = [sum(1 for _ in group) for _, group in __import__("itertools").groupby(pids)]
    assert all(4 <= run <= 6 for run in runs[:-1]), runs


def test_worker_connections_bounds_the_requests_a_worker_serves_at_once(log) -> None:
    with Gunicorn("flask_mixed:app", "--worker-connections", "2", log_path=log, workers=1).start(
        workers=1
    ) as server:
        load = Load(server.port, "/concurrent?seconds=0.2", clients=5, limit=2)
        outcomes = load.finish()
        status, body = get(server.port, "/max-concurrency")
    assert [o.status for o in outcomes] == [200] * 10
    assert (status, body["max"]) == (200, 2)


def test_without_gevent_a_wsgi_app_runs_in_a_bounded_pool_of_threads(log) -> None:
    with Gunicorn(
        "threads_and_asgi:wsgi", "--threads", "3", frameworks="none", log_path=log, workers=1
    ).start(workers=1) as server:
        load = Load(server.port, "/?0.2", clients=6, limit=2)
        outcomes = load.finish()
        status, body = get(server.port, "/")
    assert [o.status for o in outcomes] == [200] * 12
    assert not any(o.body["main_thread"] for o in outcomes)
    assert (status, body["max"]) == (200, 3)


@pytest.mark.parametrize(
    ("options", "loop"),
    [
        pytest.param((), "asyncio.unix_events", id="stdlib loop"),
        pytest.param(("--asgi-loop", "uvloop"), "uvloop", id="uvloop"),
    ],
)
def test_an_asgi_app_is_detected_and_served_on_the_hubs_loop(log, options, loop) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    with Gunicorn(
        "threads_and_asgi:asgi", *options, frameworks="none", log_path=log, workers=1
    ).start(workers=1) as server:
        status, body = get(server.port, "/")
    assert (status, body["asgi"], body["main_thread"], body["loop"]) == (200, True, True, loop)


def test_worker_connections_bounds_the_connections_an_asgi_worker_serves_at_once(log) -> None:
    with Gunicorn(
        "threads_and_asgi:asgi",
        "--worker-connections",
        "2",
        frameworks="none",
        log_path=log,
        workers=1,
    ).start(workers=1) as server:
        outcomes = Load(server.port, "/?0.2", clients=5, limit=2).finish()
        status, body = get(server.port, "/")
    assert [o.status for o in outcomes] == [200] * 10
    assert (status, body["max"]) == (200, 2)


def test_the_stock_gevent_worker_boots_on_the_same_plain_wsgi_app(log) -> None:
    # The benchmark's baseline (benchmarks/bench_gunicorn.py): gunicorn's own -k gevent.
    gevent = pytest.importorskip("gevent")
    if tuple(int(p) for p in gevent.__version__.split(".")[:2]) < (24, 10):
        pytest.skip("gunicorn's gevent worker needs gevent >= 24.10")
    with Gunicorn(
        "threads_and_asgi:wsgi",
        worker_class="gevent",
        frameworks=None,
        log_path=log,
        workers=1,
        ready_pattern=STOCK_BOOT,
    ).start(workers=1) as server:
        status, _body = get(server.port, "/")
    assert status == 200


@pytest.mark.parametrize(
    ("app", "frameworks", "reason"),
    [
        pytest.param(
            "failing_startup:app",
            "none",
            "RuntimeError: the database at db.invalid does not answer",
            id="a startup hook raises",
        ),
        pytest.param(
            "threads_and_asgi:wsgi", "gevent,twistd", "twistd", id="an unknown framework name"
        ),
    ],
)
def test_a_worker_that_cannot_boot_stops_gunicorn_instead_of_respawning(
    log, app, frameworks, reason
) -> None:
    with Gunicorn(app, frameworks=frameworks, log_path=log, workers=1) as server:
        code = server.wait_exit(timeout=60)
        output = server.output()
    assert code == 3  # gunicorn's WORKER_BOOT_ERROR: the master halts
    assert reason in output
    assert "Worker failed to boot" in output
    assert "Hub worker serving" not in output
