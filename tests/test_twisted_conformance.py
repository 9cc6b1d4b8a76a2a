"""Twisted's own reactor test suites (ReactorBuilder), run against the hub's reactor.

The reactor under test is ``_twisted_helpers.StandaloneHubReactor``: the hub's
reactor (timers, fds through the hub, soon-write, cached log context, thread
pool) driving its own loop, as the suites expect of a reactor.

Known differences are listed in :func:`known_failures` and are *strict*: a
test listed there that passes fails the run too, so the entry gets removed.
The run takes about a minute per loop, so it runs in tox's ``conformance`` env
(``BRIDGES_CONFORMANCE=1``), which CI runs every time.  By hand::

    python tests/test_twisted_conformance.py [module ...] [--uvloop] [--json FILE]
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import pytest

MODULES = [
    "twisted.internet.test.test_core",
    "twisted.internet.test.test_time",
    "twisted.internet.test.test_threads",
    "twisted.internet.test.test_tcp",
    "twisted.internet.test.test_unix",
    "twisted.internet.test.test_fdset",
    "twisted.internet.test.test_udp",
    "twisted.internet.test.test_process",
]
HERE = Path(__file__).resolve().parent
LOOPS = {"stdlib": "StandaloneHubReactor", "uvloop": "StandaloneHubReactorOnUvloop"}

HANG_TIMEOUT = 10.0
"""Seconds a known hang may run before it fails (Twisted's default is 120)."""


def known_failures(loop: str) -> dict[str, str]:
    """Test name (without the builder class prefix) -> why it fails on this loop."""
    known: dict[str, str] = {}
    if os.geteuid() == 0:
        reason = (
            "run as root, the child keeps privileges and the test fails for every reactor, "
            "Twisted's EPollReactor included"
        )
        known["test_process.ProcessTestsBuilder.test_changeUID"] = reason
        known["test_process.PTYProcessTestsBuilder.test_changeUID"] = reason
    if loop == "stdlib":
        known["test_fdset.ReactorFDSetTestsBuilder.test_lostFileDescriptor"] = (
            "epoll forgets an fd closed under it; Twisted skips this test for its asyncio and "
            "epoll reactors by class name, so it runs (and hangs) for ours"
        )
    if loop == "uvloop":
        known["test_tcp.AbortConnectionTests.test_resumeProducingThrows"] = (
            "hangs on uvloop; Twisted's own AsyncioSelectorReactor on uvloop hangs the same way"
        )
    return known


def short_name(test_id: str, reactor: str) -> str:
    """``...test_tcp.XBuilder_<reactor>Tests.test_y`` -> ``test_tcp.XBuilder.test_y``

    The name leaves out the reactor, so one list of known failures reads the same for every loop.
    """
    module, cls, method = test_id.rsplit(".", 2)
    return f"{module.rsplit('.', 1)[1]}.{cls.replace(f'_{reactor}Tests', '')}.{method}"


def _suite(modules: list[str], reactor: str) -> unittest.TestSuite:
    from twisted.internet.test.reactormixins import ReactorBuilder
    from twisted.trial import runner

    ReactorBuilder._reactors.append(f"_twisted_helpers.{reactor}")
    names = []
    for name in modules:
        module = importlib.import_module(name)
        suffix = f"_{reactor}Tests"
        names += [f"{name}.{attr}" for attr in vars(module) if attr.endswith(suffix)]
    return runner.TestLoader().loadByNames(names, recurse=False)  # type: ignore[no-any-return]


def _tests(suite: Any) -> list[Any]:
    if isinstance(suite, unittest.TestSuite):
        return [test for child in suite for test in _tests(child)]
    return [suite]


def run_suites(modules: list[str], loop: str) -> dict[str, str]:
    """Run the suites in this process; return short test name -> outcome."""
    from twisted.trial import reporter, runner

    reactor = LOOPS[loop]
    sys.path.insert(0, str(HERE))
    suite = _suite(modules, reactor)
    known = known_failures(loop)
    for test in _tests(suite):
        if short_name(test.id(), reactor) in known:
            test.timeout = HANG_TIMEOUT  # a known hang fails in seconds, not minutes
    outcomes: dict[str, str] = {}

    class Recording(reporter.VerboseTextReporter):  # type: ignore[misc]
        def _record(self, test: Any, outcome: str) -> None:
            outcomes[short_name(test.id(), reactor)] = outcome

        def addSuccess(self, test: Any) -> None:
            self._record(test, "passed")
            super().addSuccess(test)

        def addFailure(self, test: Any, fail: Any) -> None:
            self._record(test, "failed")
            super().addFailure(test, fail)

        def addError(self, test: Any, error: Any) -> None:
            self._record(test, "failed")
            super().addError(test, error)

        def addSkip(self, test: Any, reason: Any) -> None:
            self._record(test, "skipped")
            super().addSkip(test, reason)

        def addExpectedFailure(self, test: Any, error: Any, todo: Any = None) -> None:
            self._record(test, "skipped")
            super().addExpectedFailure(test, error, todo)

        def addUnexpectedSuccess(self, test: Any, todo: Any = None) -> None:
            self._record(test, "passed")
            super().addUnexpectedSuccess(test, todo)

    temp = os.path.join(tempfile.mkdtemp(prefix="bridges-trial-"), "_trial_temp")
    runner.TrialRunner(Recording, workingDirectory=temp).run(suite)
    return outcomes


def compare(outcomes: dict[str, str], known: dict[str, str]) -> tuple[str, list[str]]:
    """A one-line count, and what contradicts the known failures (empty when all is expected)."""
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    passed = sum(outcome == "passed" for outcome in outcomes.values())
    skipped = sum(outcome == "skipped" for outcome in outcomes.values())
    problems = [f"unexpected failure: {name}" for name in sorted(failed - set(known))]
    problems += [
        f"unexpected pass (remove it from known_failures): {name}"
        for name in sorted(known)
        if outcomes.get(name) == "passed"
    ]
    problems += [
        f"a known failure did not run: {name}" for name in sorted(known) if name not in outcomes
    ]
    summary = (
        f"{passed} passed, {len(failed & set(known))} known failures, {skipped} skipped, "
        f"{len(failed - set(known))} unexpected failures, of {len(outcomes)}"
    )
    return summary, problems


@pytest.mark.skipif(
    os.environ.get("BRIDGES_CONFORMANCE") != "1",
    reason="a minute or more per loop: tox -e conformance (CI runs it) sets BRIDGES_CONFORMANCE=1",
)
@pytest.mark.timeout(900)
@pytest.mark.parametrize("loop", list(LOOPS))
def test_twisteds_reactor_suites_pass_on_the_hubs_reactor(loop: str, tmp_path: Path) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed")
    pytest.importorskip("hamcrest", reason="test_tcp needs pyhamcrest")
    report = tmp_path / "outcomes.json"
    done = subprocess.run(
        [sys.executable, __file__, f"--loop={loop}", f"--json={report}"],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert report.exists(), done.stdout[-5000:] + done.stderr[-5000:]
    summary, problems = compare(json.loads(report.read_text()), known_failures(loop))
    print(f"\nTwisted reactor conformance ({loop} loop): {summary}")
    assert not problems, "\n".join(problems) + "\n\n" + done.stdout[-5000:]


def main(argv: list[str]) -> int:
    loop = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--loop=")), "stdlib")
    if "--uvloop" in argv:
        loop = "uvloop"
    report = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--json=")), None)
    modules = [arg for arg in argv if not arg.startswith("--")] or MODULES
    outcomes = run_suites(modules, loop)
    if report:
        Path(report).write_text(json.dumps(outcomes, indent=1))
    summary, problems = compare(outcomes, known_failures(loop) if modules == MODULES else {})
    print(f"Twisted reactor conformance ({loop} loop): {summary}", *problems, sep="\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
