"""Tornado's own test suite with each test's IOLoop on a hub, beside a native run.

Both runs go side by side in child processes (``tornado_suite.py``, two per mode).  A test
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
from typing import Any, Callable

import pytest
from _ecosystem import Child

pytest.importorskip("tornado.test.runtests")
pytestmark = pytest.mark.timeout(600)

SUITE = str(Path(__file__).resolve().parent / "tornado_suite.py")
SHARDS = 2
FAILED = ("fail", "error")


def run_side_by_side(
    children: list[Child], tmp_path: Path, name: str, tests: list[str]
) -> dict[str, Any]:
    """Run ``tests`` natively and on hubs at once, each mode in SHARDS processes.

    Tornado's tests mostly wait (timeouts, sleeps), so four processes share
    two cores well.  Returns each mode's outcomes, failure texts and the
    longest shard's seconds.
    """
    shards = [tests[i::SHARDS] for i in range(SHARDS)] if len(tests) >= SHARDS else [tests]
    started = []
    for mode in ("native", "hub"):
        for number, shard in enumerate(shards):
            out = tmp_path / f"{name}-{mode}-{number}.json"
            child = Child([sys.executable, SUITE, mode, str(out), *shard])
            children.append(child)
            started.append((mode, child, out))
    merged: dict[str, Any] = {}
    for mode in ("native", "hub"):
        merged[mode], merged[f"{mode} details"], merged[f"{mode} seconds"] = {}, {}, 0.0
    for mode, child, out in started:
        returncode, _, err = child.wait(timeout=540)
        assert returncode == 0, f"a {mode} run exited with {returncode}:\n{err[-4000:]}"
        report = json.loads(out.read_text())
        merged[mode].update(report["outcomes"])
        merged[f"{mode} details"].update(report["details"])
        merged[f"{mode} seconds"] = max(merged[f"{mode} seconds"], report["seconds"])
    return merged


def test_no_test_of_tornados_suite_fails_on_hubs_that_passes_natively(
    children: list[Child], tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    from tornado.test.runtests import TEST_MODULES

    first = run_side_by_side(children, tmp_path, "suite", list(TEST_MODULES))
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
