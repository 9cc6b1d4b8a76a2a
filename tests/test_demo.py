"""``python -m bridges demo``: the mixed-framework service, run as users run it (a subprocess)."""

from __future__ import annotations

import http.client
import signal
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
from _demo_helpers import Service, get_json, run_command

CHAIN = "tornado -> twisted -> gevent -> asyncio -> asyncore"
BANNER = {
    "tornado": r"tornado +(http://\S+)",
    "twisted": r"twisted +(http://\S+)",
    "gevent": r"gevent +(http://\S+)",
    "asyncore": r"asyncore +127\.0\.0\.1:(\d+)",
}


DEMO = ["-m", "bridges", "demo", "--port", "0"]


def read_banner(service: Service) -> tuple[dict[str, str], str]:
    """The addresses the demo printed, and its curl line's URL."""
    urls = {name: service.wait_for(regex, timeout=60).group(1) for name, regex in BANNER.items()}
    curl = service.wait_for(r"Try: curl -s (\S+)", timeout=10).group(1)
    return urls, curl


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[Service, dict[str, str], str]]:
    with Service(DEMO) as service:
        urls, curl = read_banner(service)
        yield service, urls, curl


@pytest.mark.timeout(120)
def test_self_test_sends_real_requests_to_every_endpoint_and_prints_only_its_report() -> None:
    code, output = run_command(["-m", "bridges", "demo", "--self-test"], timeout=100)
    assert code == 0, output
    assert "self-test: 9/9 passed" in output
    assert "10/10 concurrent GET" in output
    # Only the report: no banner, no log line of each request it sent.
    lines = output.strip().splitlines()
    assert lines[0] == "self-test:", output  # no banner, no log line of each request
    assert "Try: curl" not in output
    assert lines[-1] == "self-test: 9/9 passed"


@pytest.mark.timeout(120)
def test_the_self_test_passes_on_uvloop_too() -> None:
    pytest.importorskip("uvloop")
    program = (
        "import sys, bridges, bridges._demo as demo\n"
        "ok = bridges.run(demo.serve, 0, True, frameworks=demo.FRAMEWORKS, loop_factory='uvloop')\n"
        "sys.exit(0 if ok else 1)\n"
    )
    code, output = run_command(["-c", program], timeout=100)
    assert code == 0, output
    assert "self-test: 9/9 passed" in output


@pytest.mark.timeout(120)
def test_the_curl_line_crosses_every_framework_on_one_thread(demo) -> None:
    _, _, curl = demo
    body = get_json(curl)
    assert body["path"] == CHAIN
    assert body["one_thread"] is True
    assert len({hop["thread"] for hop in body["hops"]}) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework", ["tornado", "twisted", "gevent"])
def test_each_web_endpoint_is_answered_by_its_own_framework(demo, framework: str) -> None:
    _, urls, _ = demo
    assert get_json(urls[framework])["path"] == framework


@pytest.mark.timeout(120)
def test_the_asyncore_service_answers_a_hop_line(demo) -> None:
    _, urls, _ = demo
    with socket.create_connection(("127.0.0.1", int(urls["asyncore"])), timeout=30) as sock:
        sock.sendall(b"hop\n")
        reply = sock.makefile("rb").readline()
    assert b'"framework": "asyncore"' in reply


@pytest.mark.timeout(120)
def test_each_request_is_logged_with_the_framework_that_handled_it(demo) -> None:
    service, _, curl = demo
    get_json(curl)
    for framework in ("tornado ", "twisted ", "gevent  ", "asyncio ", "asyncore"):
        service.wait_for(rf"{framework} (GET|connect|line)", timeout=30)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("signum", "said"), [(signal.SIGTERM, "stopped (SIGTERM)"), (signal.SIGINT, "stopped (Ctrl-C)")]
)
def test_the_demo_stops_cleanly_and_exits_0_on_a_stop_signal(signum: int, said: str) -> None:
    with Service(DEMO) as service:
        _, curl = read_banner(service)
        assert get_json(curl)["path"] == CHAIN
        code = service.stop(signum)
        output = service.output()
    assert code == 0, output
    assert said in output
    assert "Traceback" not in output


def fetch_outcome(url: str) -> str:
    """How a request ended: its status, or the kind of error (a timeout would say so)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__


@pytest.mark.timeout(120)
def test_sigterm_lets_the_chains_in_flight_finish_then_exits_0() -> None:
    with Service(DEMO) as service, ThreadPoolExecutor(max_workers=10) as clients:
        _, curl = read_banner(service)
        in_flight = [clients.submit(fetch_outcome, curl) for _ in range(10)]
        for _ in in_flight:  # every request has reached the Tornado handler
            service.wait_for(r"tornado +GET /chain", timeout=60)
        code = service.stop(signal.SIGTERM)
        outcomes = [request.result(timeout=90) for request in in_flight]
    assert code == 0, service.output()
    assert outcomes == ["200"] * 10
    assert "Traceback" not in service.output()


@pytest.mark.timeout(120)
def test_a_busy_port_is_reported_with_what_to_do_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = run_command(["-m", "bridges", "demo", "--port", str(port)], timeout=100)
    assert code == 2, output
    assert "--port" in output
