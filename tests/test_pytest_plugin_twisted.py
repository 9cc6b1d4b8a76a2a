"""The pytest plugin with Twisted: Deferred, inlineCallbacks and trial tests, Twisted's failures."""

from __future__ import annotations

import pytest
from _pytest_plugin_helpers import run_inner

pytest.importorskip("twisted")

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(90)

HEADER = """
import asyncio
import pytest
from twisted.internet import defer, task

pytestmark = pytest.mark.bridges(frameworks=["twisted"])

def later(value, delay=0.01):
    from twisted.internet import reactor
    return task.deferLater(reactor, delay, lambda: value)
"""


def test_an_inline_callbacks_test_and_fixture_run_on_the_reactor(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
@pytest.fixture
@defer.inlineCallbacks
def greeting():
    value = yield later("hello")
    return value

@defer.inlineCallbacks
def test_inline(greeting):
    from twisted.internet import reactor
    assert reactor.running
    value = yield later(greeting + " world")
    assert value == "hello world"
""",
    )
    result.assert_outcomes(passed=1)


def test_a_test_returning_a_deferred_passes_or_fails_with_its_outcome(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
def test_fires():
    return later(None)

def test_errbacks():
    return later(None).addCallback(lambda _: 1 / 0)
""",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ZeroDivisionError*"])


def test_an_async_test_awaits_deferreds_through_the_hub(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
import bridges

@pytest.fixture
async def from_twisted():
    return await bridges.awaitable(later("fixture"))

async def test_async(from_twisted):
    assert from_twisted == "fixture"
    assert await bridges.awaitable(later(2)) == 2
""",
    )
    result.assert_outcomes(passed=1)


def test_an_unhandled_error_in_a_deferred_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
def test_drops_a_failed_deferred():
    d = defer.Deferred()
    d.errback(ValueError("lost in a Deferred"))
    del d
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*error(s) nobody handled were reported while test_drops_a_failed_deferred ran*",
            "*Unhandled error in Deferred*",
            "*ValueError: lost in a Deferred*",
        ]
    )


def test_a_leaked_delayed_call_is_named(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
def remember_me():
    pass

def test_leaves_a_delayed_call():
    from twisted.internet import reactor
    reactor.callLater(3600, remember_me)
""",
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*Twisted delayed call <DelayedCall*remember_me()>*"])


def test_reactor_stop_ends_the_test_and_the_next_test_gets_a_new_reactor_run(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        HEADER
        + """
@defer.inlineCallbacks
def test_stops_the_reactor():
    from twisted.internet import reactor
    reactor.stop()
    yield later(None, delay=30)
    raise AssertionError("not reached: the stop cancelled the test")

@defer.inlineCallbacks
def test_next():
    value = yield later("still works")
    assert value == "still works"
""",
    )
    result.assert_outcomes(passed=2)


def test_auto_mode_runs_inline_callbacks_tests_without_a_marker(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
from twisted.internet import defer

@defer.inlineCallbacks
def test_unmarked():
    from twisted.internet import reactor
    assert reactor.running
    yield defer.succeed(None)
""",
        ini="bridges_mode = auto\nbridges_frameworks = twisted",
    )
    result.assert_outcomes(passed=1)


# -- trial TestCases -----------------------------------------------------------------

TRIAL_HEADER = """
import gc
import pytest
from twisted.internet import defer, task
from twisted.trial import unittest

def later(value, delay=0.01):
    from twisted.internet import reactor
    return task.deferLater(reactor, delay, lambda: value)
"""


def test_trial_test_cases_wait_for_their_deferreds_on_the_hub(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        TRIAL_HEADER
        + """
import bridges

@pytest.mark.bridges(frameworks=["twisted"])
class TestOnHub(unittest.TestCase):
    def setUp(self):
        self.hub = bridges.current_hub()
        return later(None)

    def tearDown(self):
        return later(None)

    def test_returns_a_deferred(self):
        self.addCleanup(lambda: later(None))
        return later(5).addCallback(self.assertEqual, 5)

    @defer.inlineCallbacks
    def test_inline_callbacks(self):
        value = yield later(3)
        self.assertEqual(value, 3)
        self.assertIs(bridges.current_hub(), self.hub)

    def test_fails(self):
        return later(3).addCallback(self.assertEqual, 4)
""",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FailTest: 3 != 4*"])


def test_trial_keeps_its_own_rules_for_logged_errors_and_timeouts(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        TRIAL_HEADER
        + """
@pytest.mark.bridges(frameworks=["twisted"])
class TestRules(unittest.TestCase):
    def test_flushed_error_is_fine(self):
        d = defer.fail(ValueError("expected"))
        del d
        gc.collect()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_unflushed_error_fails(self):
        d = defer.fail(ValueError("unexpected"))
        del d
        gc.collect()

    def test_times_out(self):
        return defer.Deferred()

    test_times_out.timeout = 0.2
""",
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*still running at 0.2 secs*", "*ValueError: unexpected*"])
    result.stdout.no_fnmatch_line("*nobody handled*")


def test_auto_mode_runs_trial_test_cases_on_the_hub(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        TRIAL_HEADER
        + """
import bridges

class TestUnmarked(unittest.TestCase):
    def test_on_hub(self):
        bridges.current_hub()
        return later(None)
""",
        ini="bridges_mode = auto\nbridges_frameworks = twisted",
    )
    result.assert_outcomes(passed=1)


@pytest.mark.bridges(frameworks=["twisted"])
def test_trial_private_hooks_the_plugin_replaces_still_exist() -> None:
    # bridges.twisted._pytest replaces these per instance (checked on Twisted 23.10-26.10).
    # Imported on the hub: importing trial imports the reactor, and outside a hub
    # that would install Twisted's default one for the rest of this process.
    from twisted.trial import unittest

    case = unittest.TestCase()
    hooks = ("_runFixturesAndTest", "_cleanUp", "_classCleanUp", "_removeObserver")
    for name in hooks:
        assert callable(getattr(case, name)), name
    # the chain's entry point: _deferSetUp from Twisted 25.5, deferSetUp before
    assert callable(getattr(case, "_deferSetUp", None) or getattr(case, "deferSetUp", None)), (
        "trial's TestCase has neither _deferSetUp nor deferSetUp to start a test's chain"
    )
