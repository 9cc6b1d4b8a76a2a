"""Run Tornado's own test suite (the installed ``tornado.test``), natively or on hubs.

``python tornado_suite.py native OUT.json [TEST ...]`` runs it as Tornado's ``runtests``
does (same modules, same warning filters); ``python tornado_suite.py hub
OUT.json`` runs it the same way, except that every ``AsyncTestCase`` (and so
every ``AsyncHTTPTestCase``, ``@gen_test``, ``run_sync`` in a test) runs on a
bridges hub started on the test's own IOLoop, as
``bridges.tornado.HubTestMixin`` does.  Tests that make IOLoops of their own,
outside ``AsyncTestCase``, run natively in both.

OUT.json gets ``{"outcomes": {test id: outcome}, "seconds": ...}`` with
outcomes ``pass``, ``fail``, ``error``, ``skip``, ``xfail``, ``xpass``.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
import unittest
import warnings
from typing import Any


class Outcomes(unittest.TestResult):
    """Records one outcome per test id; keeps the text of failures for the report."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def _record(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        # A test that failed in tearDown after passing is a failure, not a pass.
        if self.outcomes.get(test.id()) in ("fail", "error"):
            return
        self.outcomes[test.id()] = outcome
        if detail:
            self.details[test.id()] = detail[-3000:]

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._record(test, "pass")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "fail", self.failures[-1][1])

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", self.errors[-1][1])

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._record(test, "skip")

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._record(test, "xfail")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._record(test, "xpass")


def configure_like_runtests() -> None:
    """The warning and logging set-up of ``tornado.test.runtests.main``."""
    warnings.filterwarnings("error")
    warnings.filterwarnings("ignore", category=ImportWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("error", category=DeprecationWarning, module=r"tornado\..*")
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("error", category=PendingDeprecationWarning, module=r"tornado\..*")
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)


def put_each_test_on_a_hub() -> None:
    """Every ``AsyncTestCase`` starts a hub on its IOLoop in setUp and stops it in tearDown.

    Patched on the base class, so that subclasses' own ``setUp`` (which call
    ``super().setUp()`` first, then start servers) run with the hub already
    there, and their ``tearDown`` (which stop servers, then call
    ``super().tearDown()``) stop the hub after their own cleanup.
    """
    from tornado.testing import AsyncTestCase

    from bridges.tornado import HubTestMixin

    native_set_up, native_tear_down = AsyncTestCase.setUp, AsyncTestCase.tearDown

    # wraps(): Tornado's api_test compares the signatures of its public API.
    @functools.wraps(native_set_up)
    def set_up(self: Any) -> None:
        native_set_up(self)
        self.bridges_frameworks = ("tornado",)
        try:
            HubTestMixin._bridges_start_hub(self)
        except BaseException:
            native_tear_down(self)
            raise

    @functools.wraps(native_tear_down)
    def tear_down(self: Any) -> None:
        HubTestMixin._bridges_stop_hub(self)
        native_tear_down(self)

    AsyncTestCase.setUp = set_up  # type: ignore[method-assign]
    AsyncTestCase.tearDown = tear_down  # type: ignore[method-assign]


def main(mode: str, out: str, *names: str) -> None:
    """Run the suite (or only the tests ``names``, dotted as unittest takes them)."""
    configure_like_runtests()
    from tornado.test.runtests import TEST_MODULES

    if mode == "hub":
        put_each_test_on_a_hub()
    elif mode != "native":
        raise SystemExit(f"mode must be 'native' or 'hub', not {mode!r}")
    suite = unittest.defaultTestLoader.loadTestsFromNames(names or TEST_MODULES)
    result = Outcomes()
    started = time.monotonic()
    suite.run(result)
    report = {
        "mode": mode,
        "outcomes": result.outcomes,
        "details": result.details,
        "seconds": round(time.monotonic() - started, 1),
    }
    with open(out, "w", encoding="utf-8") as stream:
        json.dump(report, stream)


if __name__ == "__main__":
    main(*sys.argv[1:])
