"""eventlet's own test suite on the bridges hub, beside eventlet's native hub and its asyncio hub.

``scripts/eventlet_conformance.py`` runs each module of eventlet's tests
(from the sdist of the installed version) in its own process on each hub.
CI (tox's ``conformance`` env, ``BRIDGES_CONFORMANCE=1``) runs the script's
curated modules.  A module that passes natively must pass on the bridges hub
unless :data:`KNOWN_DIFFERENCES` names it; a module named there that passes
on the bridges hub fails the run too (strict), so the entry gets removed.  A
module that fails natively as well proves nothing either way and is
reported only.
"""

from __future__ import annotations

import pytest
from _conformance_helpers import conformance_only, load_script

KNOWN_DIFFERENCES: dict[str, str] = {
    "api_test": (
        "its check_hub() expects hub.abort(wait=True) to stop eventlet's hub (hub.running "
        "False); on the bridges hub, the bridges hub owns the loop and abort() leaves it "
        "running (5 tests: test_001_trampoline_timeout, test_connect_ssl, test_connect_tcp, "
        "test_tcp_listener, test_timeout_cancel)"
    ),
    "queue_test": (
        "TestNoWait.test_wait_except: a KeyboardInterrupt raised in a greenthread stops the "
        "hub, as in asyncio, where eventlet's native hub raises it in the main greenlet's next "
        "blocking call"
    ),
}
"""Module -> why it fails on the bridges hub and passes natively."""


@conformance_only
@pytest.mark.timeout(1800)
def test_eventlets_suite_passes_on_the_hub_where_it_passes_natively() -> None:
    pytest.importorskip("eventlet", reason="eventlet is not installed")
    script = load_script("eventlet_conformance")
    suite = script.suite_dir()
    results = script.run_all(script.CURATED, suite, timeout=240.0, jobs=2)
    problems, lines = [], []
    for module, outcomes in results:
        native, ours = outcomes["native"], outcomes["bridges"]
        cells = "  ".join(f"{mode} {script.cell(outcomes[mode]):<34}" for mode in script.MODES)
        lines.append(f"{module:<28} {cells}")
        if native.passed and not ours.passed and module not in KNOWN_DIFFERENCES:
            problems.append(f"fails on the bridges hub only: {module} ({ours.summary})")
        if module in KNOWN_DIFFERENCES and ours.passed:
            problems.append(f"unexpected pass (remove it from KNOWN_DIFFERENCES): {module}")
    passing = {mode: sum(outcomes[mode].passed for _, outcomes in results) for mode in script.MODES}
    print("\n" + "\n".join(lines))
    print(
        f"eventlet conformance (curated {len(results)} modules): "
        + ", ".join(f"{mode} {count} passed" for mode, count in passing.items())
        + f", {len(KNOWN_DIFFERENCES)} known differences"
    )
    assert not problems, "\n".join(problems)
