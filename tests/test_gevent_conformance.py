"""gevent's own test suite on bridges' asyncio-based gevent loop, beside gevent's native libev loop.

``scripts/gevent_conformance.py`` runs each module of ``gevent.tests`` in its
own process, natively and with ``GEVENT_LOOP=bridges.gevent.AsyncioLoop``.
CI (tox's ``conformance`` env, ``BRIDGES_CONFORMANCE=1``) runs every
``test__*`` module, two at a time (about 10 minutes; docs/gevent.md has the
latest counts).  Many of gevent's tests measure time, and a loaded CI machine
fails one now and then: a module that passes natively and fails on ours is
run once more, natively and on ours, before it counts, and each such rerun
is printed as a flake.

A module that passes natively must pass on ours unless
:data:`KNOWN_DIFFERENCES` names it; a module named there that passes on ours
fails the run too (strict), so the entry gets removed.  A module that fails
natively as well proves nothing either way and is reported only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _conformance_helpers import conformance_only, load_script

KNOWN_DIFFERENCES: dict[str, str] = {}
"""Module -> why it fails on the hub's loop and passes natively.  None today."""


@conformance_only
@pytest.mark.timeout(3600)
def test_gevents_suite_passes_on_the_hubs_loop_where_it_passes_natively() -> None:
    pytest.importorskip("gevent", reason="gevent is not installed")
    script = load_script("gevent_conformance")
    results = script.run_all(script.all_modules(), timeout=240.0, jobs=2, rerun=True)
    problems, lines = [], []
    for result in results:
        module, native, ours = result.module, result.native, result.ours
        lines.append(f"{module:<34} native {script.cell(native):<40} ours {script.cell(ours)}")
        if script.fails_on_ours_only(result) and module not in KNOWN_DIFFERENCES:
            problems.append(f"fails on the hub's loop only: {module} ({ours.summary})")
        if module in KNOWN_DIFFERENCES and ours.passed:
            problems.append(f"unexpected pass (remove it from KNOWN_DIFFERENCES): {module}")
    flakes = [note for note in map(script.flake_note, results) if note]
    flaky_marked = sum(r.native.passed and r.ours.flaky_marked for r in results)
    native_ok = sum(result.native.passed for result in results)
    ours_ok = sum(result.ours.passed for result in results)
    print("\n" + "\n".join(lines + flakes))
    print(
        f"gevent conformance ({len(results)} modules): native {native_ok} passed, "
        f"hub's loop {ours_ok} passed, {len(KNOWN_DIFFERENCES)} known differences, "
        f"{len(flakes)} rerun, {flaky_marked} failed on ours only in tests gevent marks flaky"
    )
    assert not problems, "\n".join(problems)


def _scripted_runs(
    script: Any, outcomes: dict[bool, list[bool]], flaky_marked: bool = False
) -> list[tuple[str, bool]]:
    """Make ``script.run_module`` answer from ``outcomes`` (ours? -> passes in order)."""
    calls: list[tuple[str, bool]] = []

    def run_module(module: str, ours: bool, timeout: float) -> Any:
        calls.append((module, ours))
        passed = outcomes[ours].pop(0)
        return script.Outcome(passed, "scripted", 0.0, flaky_marked and not passed)

    script.run_module = run_module
    return calls


def test_a_module_failing_on_ours_only_is_rerun_both_ways_and_the_rerun_counts() -> None:
    script = load_script("gevent_conformance")
    calls = _scripted_runs(script, {False: [True, True], True: [False, True]})
    result = script.compare("test__x", 1.0, rerun=True)
    assert calls == [("test__x", False), ("test__x", True)] * 2
    assert (result.native.passed, result.ours.passed) == (True, True)
    assert result.first_try is not None
    assert "rerun: test__x failed on ours only" in script.flake_note(result)


@pytest.mark.parametrize(("native", "ours"), [(False, False), (True, True), (False, True)])
def test_a_module_not_failing_on_ours_only_runs_once(native: bool, ours: bool) -> None:
    script = load_script("gevent_conformance")
    calls = _scripted_runs(script, {False: [native], True: [ours]})
    result = script.compare("test__x", 1.0, rerun=True)
    assert len(calls) == 2
    assert (result.first_try, script.flake_note(result)) == (None, "")


def test_failing_on_ours_only_in_flaky_marked_tests_is_reported_and_not_a_difference() -> None:
    script = load_script("gevent_conformance")
    _scripted_runs(script, {False: [True, True], True: [False, False]}, flaky_marked=True)
    result = script.compare("test__x", 1.0, rerun=True)
    assert not script.fails_on_ours_only(result)
    assert "only in tests gevent marks flaky" in script.flake_note(result)


def test_failing_on_ours_only_twice_is_a_difference() -> None:
    script = load_script("gevent_conformance")
    _scripted_runs(script, {False: [True, True], True: [False, False]})
    result = script.compare("test__x", 1.0, rerun=True)
    assert script.fails_on_ours_only(result)
    assert "gevent marks flaky" not in script.flake_note(result)


_FLAKY_MARKED = """
    @reraises_flaky_timeout(AssertionError)
    def test_timing(self):
        self.assertTrue(False)
"""
_PLAIN_FAILURE = """
    def test_plain(self):
        self.assertEqual(1, 2)
"""
_PLAIN_ERROR = """
    def test_error(self):
        raise RuntimeError("boom")
"""


def _gevent_test_output(tmp_path: Path, *tests: str) -> str:
    """What gevent's test runner prints for a module made of ``tests`` (run for real)."""
    source = (
        textwrap.dedent(
            """
        import gevent.testing as greentest
        from gevent.testing.flaky import reraises_flaky_timeout

        class Test(greentest.TestCase):
            def test_passes(self):
                pass
        """
        )
        + "".join(tests)
        + "\nif __name__ == '__main__':\n    greentest.main()\n"
    )
    module = tmp_path / "test_module.py"
    module.write_text(source)
    # gevent turns its flaky marks into skips on CI (these variables): not here.
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "TRAVIS", "APPVEYOR")}
    done = subprocess.run(
        [sys.executable, str(module)], capture_output=True, text=True, timeout=60, env=env
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    ("tests", "only_flaky"),
    [
        ((_FLAKY_MARKED,), True),
        ((_FLAKY_MARKED, _PLAIN_FAILURE), False),
        ((_FLAKY_MARKED, _PLAIN_ERROR), False),
        ((_PLAIN_FAILURE,), False),
        ((), False),
    ],
    ids=["flaky-mark only", "and a plain failure", "and an error", "plain failure", "passes"],
)
def test_failures_count_as_flaky_marked_only_when_gevent_raised_every_one_as_flaky(
    tmp_path: Path, tests: tuple[str, ...], only_flaky: bool
) -> None:
    pytest.importorskip("gevent", reason="gevent is not installed")
    script = load_script("gevent_conformance")
    output = _gevent_test_output(tmp_path, *tests)
    assert script.only_flaky_marked_failures(output) is only_flaky, output
