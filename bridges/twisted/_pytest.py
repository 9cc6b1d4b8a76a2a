"""Twisted ``trial`` TestCases run on the test's hub.

trial runs each test as a chain of Deferreds (``setUp``, the method, the
cleanups, ``tearDown``) and *waits* for that chain by spinning the global
reactor with ``reactor.run()``.  On the hub the reactor already runs on the
loop, which the plugin drives between a test's jobs; so the chain is started
and awaited as one job on the hub (``setUp`` and the test run inside the
running loop, where asyncio and ``bridges.current_hub()`` work), and the rest
of trial (timeouts, ``addCleanup``, ``flushLoggedErrors``, skip/todo,
reporting) is trial's own.

trial's end-of-test janitor spins the reactor too (``reactor.iterate``) to
find pending delayed calls and open sockets; on the hub the plugin's leak
report does that job, so the janitor is skipped.

These are trial's private hooks, replaced per instance (checked on Twisted
23.10-26.10): ``TestCase._runFixturesAndTest(result)``, ``_cleanUp(result)``
and ``_classCleanUp(result)``; the replacements use ``_timedOut``,
``_observer``, ``_passed`` and ``_removeObserver`` as trial's own versions do,
and start the chain as :func:`_start_chain` says.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Iterator

from .._errors import BridgeError
from .._pytest.runner import TestRunner

__all__ = ["adopt", "install_hub_reactor", "is_inline_callbacks", "is_trial_case"]


def install_hub_reactor() -> None:
    """Install the hub's reactor now, before pytest instantiates a trial TestCase.

    ``trial.unittest.TestCase.__init__`` imports ``twisted.internet.reactor``,
    which installs Twisted's default reactor if none is installed yet, and
    pytest makes TestCase instances while it collects: by the time the first
    test's hub starts, the hub could no longer install its own.  A short
    ``bridges.run`` installs it; it stays installed, idle, and every later hub
    re-binds it.
    """
    if "twisted.internet.reactor" in sys.modules:
        return
    from .._run import run

    try:
        run(_installed, frameworks=["twisted"])
    except BridgeError:
        # e.g. another plugin's reactor is already there: each test on the hub
        # then fails at its own start, with the reason and what to do.
        return


async def _installed() -> None:
    return None


_unwind_code: list[Any] = []


def is_inline_callbacks(func: Any) -> bool:
    """Whether ``func`` is decorated with ``inlineCallbacks``.

    Every function decorated with inlineCallbacks shares the code object of
    Twisted's wrapper; comparing with one we decorate ourselves needs no
    private name.  Only looked at once the test module imported Twisted.
    """
    defer = sys.modules.get("twisted.internet.defer")
    if defer is None:
        return False
    if not _unwind_code:

        def probe() -> Iterator[None]:
            yield None

        _unwind_code.append(defer.inlineCallbacks(probe).__code__)
    return getattr(func, "__code__", None) is _unwind_code[0]


def is_trial_case(cls: Any) -> bool:
    """Whether ``cls`` is a trial ``TestCase``, whose tests wait on the reactor."""
    trial = sys.modules.get("twisted.trial.unittest")
    return trial is not None and isinstance(cls, type) and issubclass(cls, trial.TestCase)


def adopt(testcase: Any, runner: TestRunner) -> Callable[[], None]:
    """Make ``testcase`` wait on ``runner``'s hub instead of spinning the reactor.

    Returns the function that undoes what outlives the test (a log observer).
    """
    testcase._runFixturesAndTest = functools.partial(_run_fixtures_and_test, runner, testcase)
    testcase._cleanUp = functools.partial(_clean_up, testcase)
    testcase._classCleanUp = _no_class_cleanup
    # Errors Twisted logs belong to trial here (they fail the test unless it
    # calls flushLoggedErrors()), not to the plugin's "nobody handled" check:
    # remember each exception Twisted logs while the test runs.
    from twisted.logger import globalLogPublisher

    logged = _LoggedFailures()
    globalLogPublisher.addObserver(logged)
    runner.ignore = logged.saw
    return lambda: globalLogPublisher.removeObserver(logged)


def _run_fixtures_and_test(runner: TestRunner, testcase: Any, result: Any) -> None:
    testcase._timedOut = False
    try:
        # trial's chain only ever calls back: failures go to ``result``
        runner.run(lambda: _start_chain(testcase, result), what=testcase.id())
    finally:
        testcase._cleanUp(result)
        testcase._classCleanUp(result)


def _start_chain(testcase: Any, result: Any) -> Any:
    """Start trial's ``setUp``, test, cleanups, ``tearDown`` chain; return its Deferred.

    trial's private entry point to the chain changed shape in Twisted 25.5: it
    is the coroutine ``_deferSetUp(result)`` from 25.5 (checked up to 26.10)
    and ``deferSetUp(None, result)``, which returns the Deferred, on 23.10-24.11.
    """
    from twisted.internet.defer import Deferred

    defer_set_up = getattr(testcase, "_deferSetUp", None)
    if defer_set_up is not None:
        return Deferred.fromCoroutine(defer_set_up(result))
    return testcase.deferSetUp(None, result)


def _clean_up(testcase: Any, result: Any) -> None:
    for error in testcase._observer.getErrors():
        result.addError(testcase, error)
        testcase._passed = False
    testcase.flushLoggedErrors()
    testcase._removeObserver()
    if testcase._passed:
        result.addSuccess(testcase)


def _no_class_cleanup(result: Any) -> None:
    return None


class _LoggedFailures:
    """A Twisted log observer that remembers the exceptions of the failures logged."""

    def __init__(self) -> None:
        self._exceptions: list[BaseException] = []

    def __call__(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure", event.get("failure"))
        value = getattr(failure, "value", None)
        if isinstance(value, BaseException):
            self._exceptions.append(value)

    def saw(self, context: dict[str, Any]) -> bool:
        exc = context.get("exception")
        return any(logged is exc for logged in self._exceptions)
