"""What bridges.gunicorn relies on in gunicorn, checked in-process on the installed gunicorn."""

from __future__ import annotations

import asyncio
import socket

import pytest

pytest.importorskip("gunicorn.asgi.protocol", reason="needs gunicorn >= 25")

from gunicorn.config import Config
from gunicorn.glogging import Logger

import bridges
from bridges.gunicorn import HubWorker, WorkerStateError, _compat, _settings
from bridges.gunicorn._worker import is_asgi


def make_worker(cfg: Config | None = None, sockets: list | None = None) -> HubWorker:
    cfg = cfg or Config()
    return HubWorker(1, 0, sockets or [], None, 30, cfg, Logger(cfg))


async def hello(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def test_gunicorns_asgi_protocol_counts_connections_and_requests_on_the_worker() -> None:
    cfg = Config()
    cfg.set("max_requests", 1)
    worker = make_worker(cfg)
    worker.asgi = hello
    seen: list[int] = []

    class Serving:  # what the worker tells when a connection closes
        def connection_closed(self) -> None:
            seen.append(worker.nr_conns)

    async def main() -> bytes:
        worker.loop = asyncio.get_running_loop()
        worker.serving = Serving()
        server_side, client_side = socket.socketpair()
        server_side.setblocking(False)
        await worker.loop.connect_accepted_socket(
            lambda: _compat.asgi_protocol(worker), server_side
        )
        assert worker.nr_conns == 1
        reader, writer = await asyncio.open_connection(sock=client_side)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)  # closed after max_requests
        writer.close()
        for _ in range(100):
            if not worker.nr_conns:
                break
            await asyncio.sleep(0.01)
        return answer

    answer = bridges.run(main, frameworks=None)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"hello" in answer.split(b"\r\n\r\n", 1)[1]  # chunked on gunicorn 27, plain on 25
    assert (worker.nr, worker.alive, worker.nr_conns, seen) == (1, False, 0, [0])


def test_the_version_check_accepts_the_installed_gunicorn() -> None:
    _compat.check_version()


def test_the_setting_is_known_to_gunicorns_command_line_only_once_registered() -> None:
    _settings.register_settings()
    _settings.register_settings()  # idempotent
    cfg = Config()
    args = cfg.parser().parse_args(["--bridges-frameworks", "gevent,twisted", "app:app"])
    cfg.set("bridges_frameworks", args.bridges_frameworks)
    assert _settings.frameworks_from(cfg) == ["gevent", "twisted"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", "auto"), ("", "auto"), ("none", None), (" gevent , tornado ", ["gevent", "tornado"])],
)
def test_the_environment_variable_names_the_frameworks(monkeypatch, value, expected) -> None:
    monkeypatch.setenv(_settings.ENV_FRAMEWORKS, value)
    assert _settings.frameworks_from(object()) == expected


def test_an_async_callable_is_asgi_and_a_plain_one_wsgi() -> None:
    class App:
        async def __call__(self, scope, receive, send) -> None:
            pass

    assert is_asgi(hello)
    assert is_asgi(App())
    assert not is_asgi(lambda environ, start_response: [])


def test_claiming_a_socket_nobody_bound_names_the_bound_ones() -> None:
    from gunicorn.sock import TCPSocket

    cfg = Config()
    listener = TCPSocket(("127.0.0.1", 0), cfg, Logger(cfg))
    worker = make_worker(cfg, [listener])
    try:
        with pytest.raises(
            WorkerStateError, match=r"'127\.0\.0\.1:1'.*bound: http://127\.0\.0\.1:"
        ):
            worker.claim_listener("127.0.0.1:1")
        host, port = listener.sock.getsockname()
        assert worker.claim_listener(f"{host}:{port}") is listener.sock
        assert worker.listeners == []
    finally:
        listener.close()


def test_the_doctor_says_what_each_worker_attaches_and_where_views_run(monkeypatch) -> None:
    from bridges.gunicorn._doctor import report

    monkeypatch.setenv(_settings.ENV_FRAMEWORKS, "auto")
    auto = report(["gevent", "twisted"])
    monkeypatch.setenv(_settings.ENV_FRAMEWORKS, "twisted")
    named = report(["gevent", "twisted"])
    assert "each worker attaches: gevent, twisted (BRIDGES_FRAMEWORKS=auto)" in auto
    assert "WSGI views run in: a greenlet per request (gevent attached)" in auto
    assert "each worker attaches: twisted (BRIDGES_FRAMEWORKS=twisted)" in named
    assert any(line.startswith("WSGI views run in: a pool of --threads threads") for line in named)


def test_importing_the_worker_module_imports_no_framework_and_adds_no_gunicorn_setting() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, bridges.gunicorn; from gunicorn.config import KNOWN_SETTINGS; "
        "print(sorted(m for m in ('gevent', 'twisted', 'tornado', 'a2wsgi') if m in sys.modules), "
        "any(s.name == 'bridges_frameworks' for s in KNOWN_SETTINGS))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[] False"
