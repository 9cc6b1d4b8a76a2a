"""Run gevent's own test suite natively and on bridges' asyncio-based gevent loop, side by side.

Usage::

    python scripts/gevent_conformance.py            # the curated modules
    python scripts/gevent_conformance.py --all      # every test__* module
    python scripts/gevent_conformance.py test__event test__queue --timeout 90

Each module runs in its own subprocess (``python -m gevent.tests.<module>``),
once natively (gevent's default libev loop) and once with
``GEVENT_LOOP=bridges.gevent.AsyncioLoop``, which makes gevent's hub
run on an asyncio loop through the same watcher layer that ``bridges.run``
uses (the loop's *standalone* mode: gevent's hub greenlet drives the asyncio
loop, since the test suite blocks in the main greenlet).  A module passes
when it exits 0 within the timeout.  The pass rates of both are printed
beside each other; gevent's ``known_failures`` apply to both runs alike.

Many of gevent's tests measure time, and a loaded machine fails some of them
now and then, natively or not.  With ``--rerun`` a module that passes
natively and fails on ours is run once more, natively and on ours, and the
second run's outcomes count; the module is reported as flaky either way.
gevent marks the timing tests it knows to be flaky (their failures are raised
as ``gevent.testing.flaky.FlakyAssertionError``, and gevent's own CI skips
them): a module that still fails on ours only after the rerun, and only in
tests gevent marks that way, is reported as such and is not a difference.
``tests/test_gevent_conformance.py`` runs every module that way in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

LOOP = "bridges.gevent.AsyncioLoop"
CURATED = [
    "test__event",
    "test__greenlet",
    "test__socket",
    "test__server",
    "test__timeout",
    "test__queue",
    "test__pool",
    "test__threadpool",
    "test__sleep0",
    "test__semaphore",
    "test__lock",
    "test__iwait",
    "test__joinall",
    "test__api",
    "test__api_timeout",
    "test__pywsgi",
    "test__select",
    "test__selectors",
    "test__subprocess",
    "test__signal",
    "test__os",
    "test__hub_join",
    "test__loop_callback",
    "test__socketpair",
    "test__socket_close",
    "test__greenletset",
    "test__local",
    "test__order",
    "test__contextvars",
]


class Outcome(NamedTuple):
    passed: bool
    summary: str
    seconds: float
    flaky_marked: bool = False
    """Failed, and only in tests gevent marks flaky (see :func:`only_flaky_marked_failures`)."""


def only_flaky_marked_failures(output: str) -> bool:
    """True if unittest's ``output`` reports failures, each one raised as gevent's flaky mark.

    gevent wraps the assertions of timing tests it knows to be unreliable
    (``reraises_flaky_timeout`` and friends) so that they fail with
    ``FlakyAssertionError``; on its own CI those become skips.  Each failed
    test's report starts with a ``FAIL:`` or ``ERROR:`` line; every report
    must name that error, and their number must be the one unittest totals.
    """
    reports = re.split(r"^(?:FAIL|ERROR): ", output, flags=re.MULTILINE)[1:]
    totals = re.findall(r"^FAILED \((.*)\)$", output, re.MULTILINE)
    if not reports or not totals:
        return False
    counted = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", totals[-1]))
    return counted == len(reports) and all("FlakyAssertionError" in r for r in reports)


def all_modules() -> list[str]:
    import gevent.tests

    folder = Path(gevent.tests.__file__).parent
    return sorted(p.stem for p in folder.glob("test__*.py"))


def run_module(module: str, ours: bool, timeout: float) -> Outcome:
    env = dict(os.environ)
    env.pop("GEVENT_LOOP", None)
    if ours:
        env["GEVENT_LOOP"] = LOOP
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"gevent.tests.{module}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(root),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(False, f"timeout after {timeout:g}s", time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    output = done.stdout + done.stderr
    ran = re.findall(r"Ran (\d+) tests?", output)
    tail = re.findall(r"^(OK.*|FAILED.*)$", output, re.MULTILINE)
    summary = f"ran {ran[-1]}, {tail[-1]}" if ran and tail else f"exit {done.returncode}"
    passed = done.returncode == 0
    return Outcome(passed, summary, elapsed, not passed and only_flaky_marked_failures(output))


class Comparison(NamedTuple):
    module: str
    native: Outcome
    ours: Outcome
    first_try: tuple[Outcome, Outcome] | None
    """The first run's (native, ours) when the module failed on ours only and was rerun."""


def compare(module: str, timeout: float, rerun: bool) -> Comparison:
    """``module`` natively, then on the hub's loop; once more if it failed on ours only."""
    native, ours = run_module(module, False, timeout), run_module(module, True, timeout)
    if rerun and native.passed and not ours.passed:
        again = run_module(module, False, timeout), run_module(module, True, timeout)
        return Comparison(module, *again, first_try=(native, ours))
    return Comparison(module, native, ours, None)


def run_all(modules: list[str], timeout: float, jobs: int, rerun: bool = False) -> list[Comparison]:
    """:func:`compare` for each module, ``jobs`` modules at once; results in order."""
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda module: compare(module, timeout, rerun), modules))


def fails_on_ours_only(result: Comparison) -> bool:
    """Passes natively and fails on ours, other than in tests gevent marks flaky."""
    return result.native.passed and not result.ours.passed and not result.ours.flaky_marked


def flake_note(result: Comparison) -> str:
    """What a rerun module did on its first try, for the report; "" if it ran once."""
    if result.first_try is None:
        return ""
    native, ours = result.first_try
    note = (
        f"rerun: {result.module} failed on ours only at first "
        f"(native {cell(native)}; ours {cell(ours)}), then native {cell(result.native)}, "
        f"ours {cell(result.ours)}"
    )
    if result.native.passed and result.ours.flaky_marked:
        note += "; only in tests gevent marks flaky (its own CI skips them): not a difference"
    return note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="gevent.tests modules (default: curated list)")
    parser.add_argument("--all", action="store_true", help="every gevent.tests.test__* module")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per module run")
    parser.add_argument("--jobs", type=int, default=2, help="modules run at once")
    parser.add_argument(
        "--rerun", action="store_true", help="run a module failing on ours only once more"
    )
    args = parser.parse_args()
    modules = all_modules() if args.all else (args.modules or CURATED)
    native_ok = ours_ok = 0
    start = time.perf_counter()
    results = run_all(modules, args.timeout, args.jobs, rerun=args.rerun)
    print(f"{'module':<34} {'native libev':<38} {'bridges AsyncioLoop':<38}")
    for result in results:
        native_ok += result.native.passed
        ours_ok += result.ours.passed
        mark = "   <-- differs" if fails_on_ours_only(result) else ""
        if result.first_try is not None:
            mark += "   (rerun)"
        print(f"{result.module:<34} {cell(result.native):<38} {cell(result.ours):<38}{mark}")
    for note in filter(None, map(flake_note, results)):
        print(note)
    total = len(modules)
    print(
        f"\nmodules passing: native {native_ok}/{total} ({native_ok / total:.0%}), "
        f"bridges AsyncioLoop {ours_ok}/{total} ({ours_ok / total:.0%}); "
        f"{time.perf_counter() - start:.0f}s with --jobs {args.jobs}"
    )
    return 0 if ours_ok >= native_ok else 1


def cell(outcome: Outcome) -> str:
    status = "pass" if outcome.passed else "FAIL"
    return f"{status} ({outcome.summary}, {outcome.seconds:.0f}s)"[:37]


if __name__ == "__main__":
    sys.exit(main())
