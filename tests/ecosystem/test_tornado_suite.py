"""Tornado's own test suite with each test's IOLoop on a hub, beside a native run.

Both runs go side by side in child processes (``tornado_suite.py``).  A test
that fails on the hubs and passes natively is run once more in both modes,
to tell a timing-sensitive test on a busy machine from a real difference;
what fails on the hubs again and passes natively again is a failure here.
The counts of both runs are printed at the end of the session.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Callable

import pytest
from _ecosystem import Child

pytest.importorskip("tornado.test.runtests")
pytestmark = pytest.mark.timeout(600)

SUITE = str(Path(__file__).resolve().parent / "tornado_suite.py")
FAILED = ("fail", "error")


def run_side_by_side(
    children: list[Child], tmp_path: Path, name: str, tests: list[str]
) -> dict[str, dict[str, str]]:
    """Run ``tests`` (all when empty) natively and on hubs at once; outcomes per mode."""
    started = {}
    for mode in ("native", "hub"):
        out = tmp_path / f"{name}-{mode}.json"
        child = Child([sys.executable, SUITE, mode, str(out), *tests])
        children.append(child)
        started[mode] = (child, out)
    outcomes = {}
    for mode, (child, out) in started.items():
        returncode, _, err = child.wait(timeout=540)
        assert returncode == 0, f"the {mode} run exited with {returncode}:\n{err[-4000:]}"
        report = json.loads(out.read_text())
        outcomes[mode] = report["outcomes"]
        outcomes[f"{mode} details"] = report["details"]
        outcomes[f"{mode} seconds"] = report["seconds"]
    return outcomes


def test_no_test_of_tornados_suite_fails_on_hubs_that_passes_natively(
    children: list[Child], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    first = run_side_by_side(children, tmp_path, "suite", [])
    native, hub = first["native"], first["hub"]
    only_on_hubs = sorted(t for t, o in hub.items() if o in FAILED and native.get(t) not in FAILED)
    again = run_side_by_side(children, tmp_path, "again", only_on_hubs) if only_on_hubs else {}
    real = [
        t
        for t in only_on_hubs
        if again["hub"].get(t) in FAILED and again["native"].get(t) not in FAILED
    ]
    lines = []
    for mode in ("native", "hub"):
        counts = collections.Counter(first[mode].values())
        lines.append(
            f"Tornado's suite, {mode:>6}: {len(first[mode])} tests, "
            + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            + f" ({first[f'{mode} seconds']:.0f} s)"
        )
    lines.append(
        f"Tornado's suite, failed on hubs only: {len(only_on_hubs)}; after a second run of "
        f"those: {len(real)} ({', '.join(only_on_hubs) or 'none'})"
    )
    record_property("summary", "\n".join(lines))  # printed by conftest.py at the end
    assert set(hub) == set(native)
    details = "\n\n".join(f"{t}:\n{again['hub details'][t]}" for t in real)
    assert not real, f"these fail on hubs and pass natively:\n{details}"
