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
        if native.passed and not ours.passed and module not in KNOWN_DIFFERENCES:
            problems.append(f"fails on the hub's loop only: {module} ({ours.summary})")
        if module in KNOWN_DIFFERENCES and ours.passed:
            problems.append(f"unexpected pass (remove it from KNOWN_DIFFERENCES): {module}")
    flakes = [note for note in map(script.flake_note, results) if note]
    native_ok = sum(result.native.passed for result in results)
    ours_ok = sum(result.ours.passed for result in results)
    print("\n" + "\n".join(lines + flakes))
    print(
        f"gevent conformance ({len(results)} modules): native {native_ok} passed, "
        f"hub's loop {ours_ok} passed, {len(KNOWN_DIFFERENCES)} known differences, "
        f"{len(flakes)} rerun"
    )
    assert not problems, "\n".join(problems)


def _scripted_runs(script: Any, outcomes: dict[bool, list[bool]]) -> list[tuple[str, bool]]:
    """Make ``script.run_module`` answer from ``outcomes`` (ours? -> passes in order)."""
    calls: list[tuple[str, bool]] = []

    def run_module(module: str, ours: bool, timeout: float) -> Any:
        calls.append((module, ours))
        return script.Outcome(outcomes[ours].pop(0), "scripted", 0.0)

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
