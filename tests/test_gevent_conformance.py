"""gevent's own test suite on bridges' asyncio-based gevent loop, beside gevent's native libev loop.

``scripts/gevent_conformance.py`` runs each module of ``gevent.tests`` in its
own process, natively and with ``GEVENT_LOOP=bridges.gevent.AsyncioLoop``.
CI (tox's ``conformance`` env, ``BRIDGES_CONFORMANCE=1``) runs the script's
curated modules -- the whole suite takes far longer than CI's budget; see
docs/gevent.md for a full run.  A module that passes natively must pass on
ours unless :data:`KNOWN_DIFFERENCES` names it; a module named there that
passes on ours fails the run too (strict), so the entry gets removed.  A module
that fails natively as well proves nothing either way and is reported only.
"""

from __future__ import annotations

import pytest
from _conformance_helpers import conformance_only, load_script

KNOWN_DIFFERENCES: dict[str, str] = {}
"""Module -> why it fails on the hub's loop and passes natively.  None among the curated ones."""


@conformance_only
@pytest.mark.timeout(1500)
def test_gevents_suite_passes_on_the_hubs_loop_where_it_passes_natively() -> None:
    pytest.importorskip("gevent", reason="gevent is not installed")
    script = load_script("gevent_conformance")
    results = script.run_all(script.CURATED, timeout=240.0, jobs=2)
    problems, lines = [], []
    for module, native, ours in results:
        lines.append(f"{module:<28} native {script.cell(native):<40} ours {script.cell(ours)}")
        if native.passed and not ours.passed and module not in KNOWN_DIFFERENCES:
            problems.append(f"fails on the hub's loop only: {module} ({ours.summary})")
        if module in KNOWN_DIFFERENCES and ours.passed:
            problems.append(f"unexpected pass (remove it from KNOWN_DIFFERENCES): {module}")
    native_ok = sum(native.passed for _, native, _ in results)
    ours_ok = sum(ours.passed for _, _, ours in results)
    print("\n" + "\n".join(lines))
    print(
        f"gevent conformance (curated {len(results)} modules): native {native_ok} passed, "
        f"hub's loop {ours_ok} passed, {len(KNOWN_DIFFERENCES)} known differences"
    )
    assert not problems, "\n".join(problems)
