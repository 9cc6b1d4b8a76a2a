"""The pytest plugin with Tornado, gevent and asyncore: their test flavors, failures and leaks."""

from __future__ import annotations

import pytest
from _pytest_plugin_helpers import run_inner

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(90)

needs_tornado = pytest.mark.skipif(
    pytest.importorskip("importlib.util").find_spec("tornado") is None,
    reason="tornado is not installed",
)


# -- Tornado -----------------------------------------------------------------------


@needs_tornado
def test_a_gen_coroutine_test_and_fixture_run_on_the_hub_ioloop(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import pytest
        from tornado import gen
        from tornado.ioloop import IOLoop
        from bridges import tornado as btn

        @pytest.fixture
        @gen.coroutine
        def greeting():
            yield gen.sleep(0.01)
            return "hello"

        @pytest.mark.bridges(frameworks=["tornado"])
        @gen.coroutine
        def test_coroutine(greeting):
            assert IOLoop.current() is btn.ioloop()
            yield gen.sleep(0.01)
            assert greeting == "hello"
        """,
    )
    result.assert_outcomes(passed=1)


@needs_tornado
def test_a_failing_gen_coroutine_test_fails_with_its_exception(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest
        from tornado import gen

        @pytest.mark.bridges(frameworks=["tornado"])
        @gen.coroutine
        def test_coroutine():
            yield gen.moment
            raise LookupError("from a gen.coroutine")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*LookupError: from a gen.coroutine*"])


@needs_tornado
def test_auto_mode_runs_gen_coroutine_tests_without_a_marker(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        from tornado import gen
        import bridges

        @gen.coroutine
        def test_unmarked():
            yield gen.moment
            assert bridges.current_hub().frameworks == ("tornado",)
        """,
        ini="bridges_mode = auto\nbridges_frameworks = tornado",
    )
    result.assert_outcomes(passed=1)


# -- frameworks = auto: what the run imported ---------------------------------------


@needs_tornado
def test_auto_attaches_the_frameworks_the_test_modules_imported(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import pytest
        import tornado.ioloop
        import bridges

        @pytest.mark.bridges
        async def test_default():
            assert bridges.current_hub().frameworks == ("tornado",)
        """,
    )
    result.assert_outcomes(passed=1)


def test_auto_attaches_no_framework_to_a_run_that_imports_none(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest
        import bridges

        @pytest.mark.bridges
        async def test_default():
            assert bridges.current_hub().frameworks == ()
        """,
    )
    result.assert_outcomes(passed=1)


def test_auto_is_decided_at_collection_not_by_the_tests_that_ran_before(
    pytester: pytest.Pytester,
) -> None:
    # The first test's hub imports gevent when it attaches it; the second
    # test's "auto" still attaches only what collection imported.
    result = run_inner(
        pytester,
        """
        import pytest
        import bridges

        @pytest.mark.bridges(frameworks=["gevent"])
        async def test_first():
            assert bridges.current_hub().frameworks == ("gevent",)

        @pytest.mark.bridges(frameworks="auto")
        async def test_second():
            assert bridges.current_hub().frameworks == ()
        """,
    )
    result.assert_outcomes(passed=2)


# -- gevent ------------------------------------------------------------------------

GEVENT_HEADER = """
import asyncio
import contextvars
import pytest
import gevent
from bridges import gevent as bg

pytestmark = pytest.mark.bridges(frameworks=["gevent"])
"""


def test_a_plain_test_runs_in_a_greenlet_that_may_block_on_gevent(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("gevent")
    result = run_inner(
        pytester,
        GEVENT_HEADER
        + """
request_id = contextvars.ContextVar("request_id")

@pytest.fixture
async def tagged():
    request_id.set(7)

def test_blocks(tagged):
    gevent.sleep(0.01)
    assert bg.wait(asyncio.sleep(0.01, "from asyncio")) == "from asyncio"
    assert request_id.get() == 7
""",
    )
    result.assert_outcomes(passed=1)


def test_a_failing_greenlet_test_fails_once_with_its_own_exception(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("gevent")
    result = run_inner(
        pytester,
        GEVENT_HEADER
        + """
def test_fails():
    gevent.sleep(0)
    assert 1 == 2
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 2"])
    result.stdout.no_fnmatch_line("*nobody handled*")


def test_a_greenlet_that_died_with_an_error_fails_the_test(pytester: pytest.Pytester) -> None:
    pytest.importorskip("gevent")
    result = run_inner(
        pytester,
        GEVENT_HEADER
        + """
def test_spawns_a_failing_greenlet():
    gevent.spawn(lambda: 1 / 0)
    gevent.sleep(0.01)
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*error(s) nobody handled*test_spawns_a_failing_greenlet*", "*ZeroDivisionError*"]
    )


def test_a_greenlet_test_past_its_timeout_says_where_the_greenlet_waited(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("gevent")
    result = run_inner(
        pytester,
        GEVENT_HEADER
        + """
@pytest.mark.bridges(frameworks=["gevent"], timeout=0.2)
def test_sleeps():
    gevent.sleep(30)
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_sleeps did not finish within its timeout of 0.2s; it was waiting in test_sleeps*"]
    )


def test_a_leaked_greenlet_is_named_with_where_it_was_spawned(pytester: pytest.Pytester) -> None:
    pytest.importorskip("gevent")
    result = run_inner(
        pytester,
        GEVENT_HEADER
        + """
def test_leaves_a_greenlet():
    gevent.spawn(gevent.sleep, 3600)
""",
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*greenlet <Greenlet*sleep(3600)>, spawned at *test_inner.py:*"])


# -- asyncore ----------------------------------------------------------------------


def test_a_leaked_dispatcher_is_named(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import socket
        import pytest
        import bridges.asyncore  # imports asyncore, or pyasyncore on Python 3.12+
        import asyncore

        class Idle(asyncore.dispatcher):
            def readable(self):
                return True

        @pytest.mark.bridges(frameworks=["asyncore"])
        async def test_leaves_a_dispatcher():
            a, b = socket.socketpair()
            test_leaves_a_dispatcher.keep = b
            Idle(a)
        """,
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*asyncore dispatcher <*Idle*"])


# -- eventlet ----------------------------------------------------------------------

EVENTLET_HEADER = """
import asyncio
import contextvars
import pytest
import eventlet
from bridges import eventlet as be

pytestmark = pytest.mark.bridges(frameworks=["eventlet"])
"""


def test_a_plain_test_runs_in_a_greenthread_that_may_block_on_eventlet(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("eventlet")
    result = run_inner(
        pytester,
        EVENTLET_HEADER
        + """
request_id = contextvars.ContextVar("request_id")

@pytest.fixture
async def tagged():
    request_id.set(7)

def test_blocks(tagged):
    eventlet.sleep(0.01)
    assert be.wait(asyncio.sleep(0.01, "from asyncio")) == "from asyncio"
    assert request_id.get() == 7
""",
    )
    result.assert_outcomes(passed=1)


def test_a_failing_greenthread_test_fails_once_with_its_own_exception(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("eventlet")
    result = run_inner(
        pytester,
        EVENTLET_HEADER
        + """
def test_fails():
    eventlet.sleep(0)
    assert 1 == 2
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 2"])
    result.stdout.no_fnmatch_line("*nobody handled*")


def test_a_greenthread_left_running_is_reported_as_a_leak(pytester: pytest.Pytester) -> None:
    pytest.importorskip("eventlet")
    result = run_inner(
        pytester,
        EVENTLET_HEADER
        + """
def test_leaves_one_behind():
    eventlet.spawn(eventlet.sleep, 30)
    eventlet.sleep(0)
""",
        ini="bridges_leaks = fail",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*left 1 thing(s) alive*", "*eventlet greenthread*"])
