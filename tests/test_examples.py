"""Every example runs with one command, as its README says, and passes its own self-test."""

from __future__ import annotations

import asyncio
import difflib
import gc
import importlib
import importlib.metadata
import re
import signal
from pathlib import Path

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


STEPS = sorted(MIGRATION.glob("step*.py"))


def _changed_lines(before: Path, after: Path) -> list[str]:
    """The lines ``diff -u before after`` adds or removes, outside the module docstrings."""

    def code(path: Path) -> list[str]:
        return path.read_text().split('"""\n', 1)[1].splitlines()

    diff = difflib.unified_diff(code(before), code(after), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_the_migration_steps_share_their_plumbing_and_differ_only_by_the_migration() -> None:
    assert len(STEPS) == 4
    for step in STEPS:
        text = step.read_text()
        assert "argparse" not in text
        assert "selftest.serve(__doc__" in text  # the command line, serving, the self-test
    # Step 2 is one line: install the hub's reactor.
    changed = [line.split("  #")[0] for line in _changed_lines(STEPS[0], STEPS[1])]
    assert [line for line in changed if line != "+"] == [
        "+from bridges import twisted as bt",
        "+    bt.install()",
    ]
    # Each later step only adds to the one before: nothing of it is discarded but what moved.
    step3, step4 = STEPS[2].read_text(), STEPS[3].read_text()
    for kept in ("async def greet(", "def asyncio_resource(", "bt.install()"):
        assert kept in step3
        assert kept in step4
    removed = [line for line in _changed_lines(STEPS[2], STEPS[3]) if line.startswith("-")]
    assert len(removed) <= 8, removed  # the data layer call that moved, and the site/checks


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
            "handler": "asyncio",
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
    assert "Warning" not in output  # e.g. pytest-asyncio's unset loop scope


def test_the_library_example_asks_for_the_pytest_the_plugin_needs() -> None:
    tox_ini = (EXAMPLES / "library_tox" / "tox.ini").read_text()
    ours = re.search(r'"pytest>=([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert ours is not None
    assert f"pytest>={ours.group(1)}" in tox_ini


def test_the_examples_install_line_installs_pytest_for_the_library_example() -> None:
    text = (EXAMPLES / "README.md").read_text()
    install = re.search(r"`(python -m pip install [^`]+)`", text)
    assert install is not None
    assert "[test]" in install.group(1)  # the test extra brings pytest and every framework


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
