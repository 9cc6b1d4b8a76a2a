"""The pytest plugin's cost per test, against pytest-asyncio's, on the same 500 trivial async tests.

Each repetition runs three pytest sessions in subprocesses, interleaved
(A B C A B C ...), with the same plugins loaded in every session:

* ``asyncio``: the tests marked ``@pytest.mark.asyncio`` (pytest-asyncio, a
  new loop per test: its default);
* ``bridges``: the same tests marked ``@pytest.mark.bridges``, with the
  plugin's default ``frameworks = auto`` (a new loop and hub per test, with
  the installed frameworks the run imported attached -- none here, as the
  suite imports none: what a user who sets nothing gets);
* ``sync``: 500 plain sync tests, to show what pytest itself costs per test.

It prints each session's wall time, the per-repetition ratio bridges/asyncio
(median and min-max; the target is <= 1.1x) and the per-test overhead of each
plugin over plain pytest.  ``--frameworks none`` (or ``twisted``, ...) adds a
session whose hubs attach those frameworks instead, for reference.

Run: python benchmarks/bench_pytest_plugin.py [--repeat 5] [--tests 500]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import add_report_options, emit, summarise

TEST = """
async def test_{n}():
    await asyncio.sleep(0)
"""
SYNC_TEST = """
def test_{n}():
    pass
"""
HEADER = {
    "asyncio": "import asyncio\nimport pytest\npytestmark = pytest.mark.asyncio\n",
    "bridges": "import asyncio\nimport pytest\npytestmark = pytest.mark.bridges\n",
    "sync": "",
}
INI = """[pytest]
asyncio_default_fixture_loop_scope = function
"""
CONFTEST = """
import time
import pytest

spent = [0.0, 0.0]

@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        return (yield)
    finally:
        spent[0] += time.process_time() - cpu
        spent[1] += time.perf_counter() - wall

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"PROTOCOL cpu={spent[0]:.6f} wall={spent[1]:.6f}")
"""


def write_suite(root: Path, kind: str, count: int, header: str) -> Path:
    folder = root / kind
    folder.mkdir()
    (folder / "pytest.ini").write_text(INI)
    (folder / "conftest.py").write_text(CONFTEST)
    body = (SYNC_TEST if kind == "sync" else TEST).format
    (folder / "test_suite.py").write_text(header + "".join(body(n=n) for n in range(count)))
    return folder


def run_session(folder: Path, count: int) -> tuple[float, float]:
    """Run one session; return (CPU, wall) seconds spent running its tests (setup, call, teardown).

    The conftest in each suite sums them around every test's run protocol, so
    interpreter start-up and collection (the same for every suite) stay out.
    """
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "bridges.pytest_plugin"] if not _entry_point_installed() else []
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or f"{count} passed" not in done.stdout:
        raise SystemExit(f"session in {folder} did not pass all {count} tests:\n{done.stdout}")
    cpu, wall = re.findall(r"PROTOCOL cpu=([0-9.]+) wall=([0-9.]+)", done.stdout)[-1]
    return float(cpu), float(wall)


def _pytest11_entry_points() -> list[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):  # Python 3.10+
        return list(found.select(group="pytest11"))
    return list(found.get("pytest11", []))  # type: ignore[attr-defined]


def _entry_point_installed() -> bool:
    return any(entry.value == "bridges.pytest_plugin" for entry in _pytest11_entry_points())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--frameworks", default=None, help="also time hubs with these attached")
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.tests = 3, 200
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suites = {kind: write_suite(root, kind, args.tests, HEADER[kind]) for kind in HEADER}
        if args.frameworks:
            frameworks = None if args.frameworks == "none" else args.frameworks.split(",")
            header = HEADER["bridges"].replace(
                "pytest.mark.bridges", f"pytest.mark.bridges(frameworks={frameworks!r})"
            )
            suites[f"bridges {args.frameworks}"] = write_suite(
                root, "frameworks", args.tests, header
            )
        cpu: dict[str, list[float]] = {kind: [] for kind in suites}
        session: dict[str, list[float]] = {kind: [] for kind in suites}
        for _ in range(args.repeat):
            for kind, folder in suites.items():
                spent, reported = run_session(folder, args.tests)
                cpu[kind].append(spent)
                session[kind].append(reported)
    print(f"{args.tests} trivial tests per session, {args.repeat} interleaved repetitions")
    print("== CPU time spent running the tests (steadiest on a shared machine)")
    report(cpu, args.tests)
    print("== wall time spent running the tests")
    report(session, args.tests)
    row = summarise(
        benchmark="pytest plugin",
        case=f"{args.tests} trivial async tests, CPU per test, default frameworks (auto)",
        unit="µs/test",
        higher_is_better=False,
        baseline_name="pytest-asyncio",
        baselines=[value / args.tests * 1e6 for value in cpu["asyncio"]],
        ours=[value / args.tests * 1e6 for value in cpu["bridges"]],
        target="cost <= 1.1x pytest-asyncio",
        target_ratio=1 / 1.1,
    )
    emit([row], args.report)


def report(times: dict[str, list[float]], count: int) -> None:
    for kind, values in times.items():
        per_test = [value / count * 1e6 for value in values]
        print(
            f"  {kind:20s} per test: median {statistics.median(per_test):.0f} us "
            f"(min {min(per_test):.0f}, max {max(per_test):.0f})"
        )
    ratios = [b / a for a, b in zip(times["asyncio"], times["bridges"])]
    print(
        f"ratio bridges / pytest-asyncio: median {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); target <= 1.1x"
    )
    for kind in [k for k in times if k != "sync"]:
        per_test = [(t - s) / count * 1e6 for t, s in zip(times[kind], times["sync"])]
        print(
            f"  {kind:20s} over plain pytest: median "
            f"{statistics.median(per_test):.0f} us "
            f"(min {min(per_test):.0f}, max {max(per_test):.0f})"
        )
    overhead_ratios = [
        (b - s) / (a - s) for a, b, s in zip(times["asyncio"], times["bridges"], times["sync"])
    ]
    print(
        "ratio of per-test plugin overhead bridges / pytest-asyncio: median "
        f"{statistics.median(overhead_ratios):.2f}x (min {min(overhead_ratios):.2f}, "
        f"max {max(overhead_ratios):.2f})"
    )


if __name__ == "__main__":
    main()
