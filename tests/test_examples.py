"""Every example runs with one command, as its README says, and passes its own self-test."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.metadata
import re
import signal

import pytest
from _demo_helpers import EXAMPLES, ROOT, Service, get_json, run_command

import bridges

MIGRATION = EXAMPLES / "migrate_twisted"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "step",
    [
        "step1_twisted.py",
        "step2_on_hub.py",
        "step3_asyncio_handler.py",
        "step4_old_calls_new.py",
    ],
)
def test_each_migration_step_serves_the_same_answers(step: str) -> None:
    code, output = run_command([step, "--self-test"], cwd=MIGRATION, timeout=100)
    assert code == 0, output
    assert "self-test passed" in output


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "step",
    [
        "step1_eventlet.py",
        "step2_on_hub.py",
        "step3_asyncio_handler.py",
        "step4_old_calls_new.py",
    ],
)
def test_each_eventlet_migration_step_serves_the_same_answers(step: str) -> None:
    pytest.importorskip("eventlet")
    code, output = run_command(
        [step, "--self-test"], cwd=EXAMPLES / "migrate_eventlet", timeout=100
    )
    assert code == 0, output
    assert "self-test passed" in output


@pytest.mark.timeout(120)
def test_a_migrated_step_serves_until_sigterm_and_exits_0() -> None:
    with Service(["step4_old_calls_new.py", "--port", "0"], cwd=MIGRATION) as service:
        url = service.wait_for(r"(http://\S+/greet\?name=ada)", timeout=60).group(1)
        assert get_json(url) == {
            "greeting": "Hello, Ada Lovelace!",
            "handler": "twisted",
            "data": "asyncio",
        }
        code = service.stop(signal.SIGTERM)
    assert code == 0, service.output()
    assert "Traceback" not in service.output()


@pytest.mark.timeout(120)
def test_the_gevent_wsgi_app_counts_every_request_through_the_asyncio_client() -> None:
    code, output = run_command(
        ["app.py", "--self-test"], cwd=EXAMPLES / "gevent_wsgi_asyncio", timeout=100
    )
    assert code == 0, output
    assert "self-test passed" in output


@pytest.mark.timeout(120)
def test_the_asyncore_daemon_gains_an_asyncio_admin_endpoint() -> None:
    code, output = run_command(
        ["admin.py", "--self-test"], cwd=EXAMPLES / "asyncore_admin", timeout=100
    )
    assert code == 0, output
    assert "self-test passed" in output


def _plugin_args() -> list[str]:
    """Load the plugin by hand only when no installed entry point does it already."""
    found = importlib.metadata.entry_points()
    plugins = (
        found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", ())
    )
    if any(ep.value == "bridges.pytest_plugin" for ep in plugins):
        return []
    return ["-p", "bridges.pytest_plugin"]


@pytest.mark.timeout(120)
def test_the_library_example_passes_its_own_suite_with_the_pytest_plugin() -> None:
    code, output = run_command(
        ["-m", "pytest", *_plugin_args(), "-p", "no:cacheprovider", "-q"],
        cwd=EXAMPLES / "library_tox",
        timeout=100,
    )
    assert code == 0, output
    assert " passed" in output
    assert "failed" not in output


def _readme_programs() -> list[str]:
    """The README's Python blocks that are whole programs (they call bridges.run)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return [block for block in blocks if "bridges.run(" in block]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "program",
    [
        pytest.param(program, id=f"README program {n}")
        for n, program in enumerate(_readme_programs(), 1)
    ],
)
def test_the_readme_example_runs_and_prints_what_it_promises(program: str, tmp_path) -> None:
    script = tmp_path / "readme_example.py"
    script.write_text(program)
    code, output = run_command([str(script)], cwd=tmp_path, timeout=100)
    assert code == 0, output
    promised = re.search(r"print\(bridges\.run\(main\)\)\s+# (.+)", program)
    if promised:
        assert promised.group(1).strip() in output


@pytest.mark.timeout(60)
def test_the_asyncio_resource_of_step3_cancels_its_task_quietly_when_the_client_leaves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(MIGRATION))
    step3 = importlib.import_module("step3_asyncio_handler")
    outcome: list[str] = []
    reports: list[object] = []

    async def main() -> None:
        from twisted.internet import reactor
        from twisted.web.server import Site

        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reports.append(ctx))
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def never_answers(request: object) -> tuple[int, dict[str, str]]:
            started.set()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                outcome.append("cancelled")
                cancelled.set()
                raise
            return 200, {}

        site = Site(step3.asyncio_resource(never_answers))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        _, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
        writer.write(b"GET /greet HTTP/1.0\r\n\r\n")
        await started.wait()
        writer.close()
        await cancelled.wait()
        gc.collect()  # Twisted reports an unhandled failure when its Deferred is collected
        await asyncio.sleep(0.05)
        await bridges.awaitable(port.stopListening())

    bridges.run(main, frameworks=["twisted"])
    assert outcome == ["cancelled"]
    assert reports == []
