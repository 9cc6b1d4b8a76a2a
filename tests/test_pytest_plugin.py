"""The pytest plugin, core behaviour: tests and fixtures on a hub, modes, failures, leaks.

Every test runs a real inner pytest session (``pytester``, in a subprocess so
that each session starts with a fresh process: the Twisted reactor and the
gevent hub are process-wide) and reads its outcome and output.
"""

from __future__ import annotations

import pytest
from _pytest_plugin_helpers import run_inner

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.timeout(90)

# -- tests and fixtures on the hub -------------------------------------------------


def test_a_marked_async_test_runs_on_a_running_hub(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest
        import bridges

        @pytest.mark.bridges(frameworks=None)
        async def test_on_hub(hub):
            await asyncio.sleep(0.01)
            assert bridges.current_hub() is hub
            assert hub.running
            assert hub.loop is asyncio.get_running_loop()
        """,
    )
    result.assert_outcomes(passed=1)


def test_the_marker_chooses_the_frameworks_attached(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(frameworks=["twisted"])
        async def test_twisted_only(hub):
            assert hub.frameworks == ("twisted",)

        @pytest.mark.bridges(frameworks=None)
        async def test_plain_asyncio(hub):
            assert hub.frameworks == ()
        """,
    )
    result.assert_outcomes(passed=2)


def test_the_ini_option_sets_the_default_frameworks(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges
        async def test_default(hub):
            assert hub.frameworks == ("twisted",)
        """,
        ini="bridges_frameworks = twisted",
    )
    result.assert_outcomes(passed=1)


def test_each_test_gets_its_own_loop_and_hub_stopped_after_it(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        seen = []
        pytestmark = pytest.mark.bridges(frameworks=None)

        async def test_first(hub):
            seen.append((asyncio.get_running_loop(), hub))

        async def test_second(hub):
            loop, first_hub = seen[0]
            assert loop is not asyncio.get_running_loop()
            assert loop.is_closed()
            assert not first_hub.running and first_hub is not hub
        """,
    )
    result.assert_outcomes(passed=2)


def test_async_fixtures_set_up_and_tear_down_on_the_test_loop(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        events = []

        @pytest.fixture
        async def coroutine_fixture():
            await asyncio.sleep(0)
            return asyncio.get_running_loop()

        @pytest.fixture
        async def generator_fixture(coroutine_fixture):
            events.append("setup")
            yield asyncio.get_running_loop()
            await asyncio.sleep(0)
            events.append(("teardown", asyncio.get_running_loop() is coroutine_fixture))

        @pytest.mark.bridges(frameworks=None)
        async def test_uses_both(coroutine_fixture, generator_fixture):
            assert coroutine_fixture is generator_fixture is asyncio.get_running_loop()

        def test_teardown_ran_on_the_same_loop():
            assert events == ["setup", ("teardown", True)]
        """,
    )
    result.assert_outcomes(passed=2)


def test_contextvars_set_by_an_async_fixture_are_seen_by_the_test(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import contextvars
        import pytest

        user = contextvars.ContextVar("user")

        @pytest.fixture
        async def logged_in():
            user.set("alice")

        @pytest.mark.bridges(frameworks=None)
        async def test_sees_the_user(logged_in):
            assert user.get() == "alice"
        """,
    )
    result.assert_outcomes(passed=1)


def test_a_broader_scoped_async_fixture_is_refused_with_advice(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.fixture(scope="module")
        async def shared():
            return 1

        @pytest.mark.bridges(frameworks=None)
        async def test_uses_it(shared):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*async fixture 'shared' has scope 'module'*Make it function-scoped*bridges.run*"]
    )


def test_the_hub_fixture_outside_a_test_on_the_hub_says_how_to_get_one(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        def test_sync(hub):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_sync is not a test on the hub*@pytest.mark.bridges*"])


def test_a_plain_function_marked_bridges_runs_inside_the_running_loop(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None)
        def test_plain(hub):
            assert asyncio.get_running_loop() is hub.loop
        """,
    )
    result.assert_outcomes(passed=1)


def test_uvloop_can_be_chosen_by_the_marker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("uvloop")
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest
        import uvloop

        @pytest.mark.bridges(frameworks=None, loop_factory="uvloop")
        async def test_on_uvloop():
            assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        """,
    )
    result.assert_outcomes(passed=1)


# -- modes -------------------------------------------------------------------------


def test_strict_mode_leaves_unmarked_async_tests_alone(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        async def test_unmarked():
            pass
        """,
        "-p",
        "no:asyncio",
        "-p",
        "no:anyio",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])


def test_auto_mode_runs_unmarked_async_tests_on_the_hub(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import bridges

        async def test_unmarked():
            assert bridges.current_hub().frameworks == ()
        """,
        ini="bridges_mode = auto\nbridges_frameworks = none",
    )
    result.assert_outcomes(passed=1)


def test_auto_mode_can_be_chosen_on_the_command_line(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import bridges

        async def test_unmarked():
            bridges.current_hub()
        """,
        "--bridges-mode=auto",
        ini="bridges_frameworks = none",
    )
    result.assert_outcomes(passed=1)


def test_auto_mode_leaves_tests_marked_for_asyncio_and_anyio_to_their_plugins(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import pytest
        import bridges

        def no_hub():
            with pytest.raises(bridges.HubNotRunningError):
                bridges.current_hub()

        @pytest.mark.asyncio
        async def test_pytest_asyncio():
            no_hub()

        @pytest.mark.anyio
        async def test_anyio():
            no_hub()

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        async def test_bridges():
            bridges.current_hub()
        """,
        ini="bridges_mode = auto\nbridges_frameworks = none",
    )
    result.assert_outcomes(passed=3)


def test_a_wrong_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "def test_x(): pass", ini="bridges_leaks = loud")
    result.stderr.fnmatch_lines(["*bridges_leaks = 'loud' is not valid; use one of warn, fail*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_unknown_marker_argument_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(framework="twisted")
        async def test_typo():
            pass
        """,
    )
    result.stderr.fnmatch_lines(
        ["*takes frameworks=, loop_factory=, timeout= and slow_callback=, not framework*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# -- failures ----------------------------------------------------------------------


def test_a_task_exception_nobody_retrieved_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None)
        async def test_drops_a_task():
            async def boom():
                raise ValueError("nobody looked at me")

            task = asyncio.ensure_future(boom())
            await asyncio.sleep(0.01)
            del task
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 error(s) nobody handled were reported while test_drops_a_task ran*",
            "*Task exception was never retrieved",
            "*ValueError: nobody looked at me",
        ]
    )


def test_an_exception_in_a_loop_callback_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        def callback():
            raise KeyError("in a callback")

        @pytest.mark.bridges(frameworks=None)
        async def test_schedules_a_bad_callback():
            asyncio.get_running_loop().call_soon(callback)
            await asyncio.sleep(0.01)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Exception in callback*", "*KeyError: 'in a callback'"])


def test_errors_nobody_handled_are_shown_beside_the_test_own_failure(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None)
        async def test_fails_twice():
            asyncio.get_running_loop().call_soon(lambda: 1 / 0)
            await asyncio.sleep(0.01)
            assert 1 == 2
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*assert 1 == 2", "*bridges: errors nobody handled*", "*ZeroDivisionError*"]
    )


def test_a_test_past_its_timeout_fails_and_says_where_it_waited(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None, timeout=0.2)
        async def test_too_slow():
            await asyncio.sleep(30)

        @pytest.mark.bridges(frameworks=None)
        async def test_next_one_still_runs():
            await asyncio.sleep(0)
        """,
    )
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_too_slow did not finish within its timeout of 0.2s; it was waiting in "
            "test_too_slow at *test_inner.py:6*It was cancelled.*"
        ]
    )


def test_a_test_that_ignores_cancellation_at_its_timeout_is_abandoned(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None, timeout=0.1)
        async def test_stubborn():
            for _ in range(100):
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    pass
        """,
        ini="bridges_stop_timeout = 0.3",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ignored the cancellation for 0.3s more; it is abandoned*"])


def test_the_ini_timeout_applies_to_async_fixtures_too(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.fixture
        async def slow():
            await asyncio.sleep(30)

        @pytest.mark.bridges(frameworks=None)
        async def test_waits_for_it(slow):
            pass
        """,
        ini="bridges_timeout = 0.2",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'slow' did not finish within its timeout of 0.2s*"])


# -- leaks -------------------------------------------------------------------------

LEAKY = """
import asyncio
import pytest

@pytest.mark.bridges(frameworks=None)
async def test_leaves_a_task():
    async def forever():
        await asyncio.sleep(3600)

    asyncio.ensure_future(forever())
    await asyncio.sleep(0)
"""


def test_a_leaked_task_is_a_warning_naming_it(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, LEAKY)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*LeakWarning: bridges: test_leaves_a_task left 1 thing(s) alive*",
            "*task <Task pending*forever()*waiting in forever at *test_inner.py:*",
        ]
    )


def test_a_leaked_task_fails_with_bridges_leaks_fail(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, LEAKY, ini="bridges_leaks = fail")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_a_task*",
            "*left 1 thing(s) alive*",
            "*task <Task pending*forever()*",
        ]
    )


def test_a_leaked_fd_registration_is_named_with_its_owner(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import socket
        import pytest

        @pytest.mark.bridges(frameworks=None)
        async def test_leaves_a_reader(hub):
            a, b = socket.socketpair()
            test_leaves_a_reader.keep = (a, b)
            hub.add_reader(a, lambda: None, owner="my-protocol")
        """,
        ini="bridges_leaks = fail",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fd * still has a reader registered by 'my-protocol'*"])


def test_leaks_of_a_failed_test_stay_warnings(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest

        @pytest.mark.bridges(frameworks=None)
        async def test_fails_and_leaks():
            asyncio.ensure_future(asyncio.sleep(3600))
            assert False
        """,
        ini="bridges_leaks = fail",
    )
    result.assert_outcomes(failed=1, warnings=1)


# -- coexistence -------------------------------------------------------------------

MIXED = """
import asyncio
import pytest
import pytest_asyncio
import bridges

@pytest_asyncio.fixture
async def asyncio_value():
    return asyncio.get_running_loop()

@pytest.fixture
async def bridges_value():
    return bridges.current_hub()

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.asyncio
async def test_pytest_asyncio(asyncio_value):
    assert asyncio_value is asyncio.get_running_loop()
    with pytest.raises(bridges.HubNotRunningError):
        bridges.current_hub()

@pytest.mark.anyio
async def test_anyio():
    import anyio
    await anyio.sleep(0)
    with pytest.raises(bridges.HubNotRunningError):
        bridges.current_hub()

@pytest.mark.bridges(frameworks=None)
async def test_bridges(bridges_value, hub):
    import anyio
    await anyio.sleep(0)
    assert bridges_value is hub
"""


def test_pytest_asyncio_anyio_and_bridges_tests_share_one_session(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(pytester, MIXED)
    result.assert_outcomes(passed=3)


def test_a_bridges_marker_wins_over_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
        import asyncio
        import pytest
        import bridges

        @pytest.mark.bridges(frameworks=None)
        async def test_on_the_hub():
            bridges.current_hub()

        async def test_on_pytest_asyncio():
            with pytest.raises(bridges.HubNotRunningError):
                bridges.current_hub()
        """,
        ini="asyncio_mode = auto",
    )
    result.assert_outcomes(passed=2)


def test_both_auto_modes_together_warn_who_wins(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        "def test_x(): pass",
        ini="asyncio_mode = auto\nbridges_mode = auto",
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*pytest-asyncio claims every `async def` test first*"])


# -- pytest internals the plugin relies on ---------------------------------------


def test_pytest_still_records_the_test_function_arguments_in_fixtureinfo(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    from bridges.pytest_plugin import _test_argnames

    assert _test_argnames(request.node) == ("request", "tmp_path")


def test_an_async_fixture_method_of_a_test_class_is_bound_to_the_test_instance(
    pytester: pytest.Pytester,
) -> None:
    # This rests on pytest's private resolve_fixture_function.
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(frameworks=None)
        class TestWithState:
            @pytest.fixture
            async def doubled(self):
                self.value = 21
                return self.value * 2

            async def test_sees_it(self, doubled):
                assert doubled == 42 and self.value == 21
        """,
    )
    result.assert_outcomes(passed=1)


# -- competing plugins -------------------------------------------------------------


def test_pytest_twisted_in_the_session_fails_twisted_tests_with_what_to_do(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_twisted", reason="pytest-twisted is not installed here")
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(frameworks=["twisted"])
        async def test_needs_the_reactor():
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-twisted is active*Run pytest with -p no:twisted*"])


def test_pytest_tornasync_in_the_session_fails_async_tests_with_what_to_do(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_tornasync", reason="pytest-tornasync is not installed here")
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(frameworks=None)
        async def test_would_be_taken():
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-tornasync is active*Run pytest with -p no:tornado*"])


def test_a_hub_that_cannot_start_errors_the_test_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import pytest

        @pytest.mark.bridges(frameworks=["twisted", "qt"])
        async def test_unknown_framework():
            pass

        @pytest.mark.bridges(frameworks=None)
        async def test_next_one_runs():
            pass
        """,
    )
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*the hub of test_unknown_framework could not start*no adapter for the framework 'qt'*"]
    )


def test_unittest_cases_other_than_trial_are_left_to_their_own_loop(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
        import unittest
        import bridges

        class TestIsolated(unittest.IsolatedAsyncioTestCase):
            async def test_runs_on_unittest_loop(self):
                with self.assertRaises(bridges.HubNotRunningError):
                    bridges.current_hub()
        """,
        ini="bridges_mode = auto",
    )
    result.assert_outcomes(passed=1)


def test_in_asyncio_debug_mode_a_leaked_task_says_where_it_was_created(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This rests on asyncio's private Task._source_traceback.
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    result = run_inner(pytester, LEAKY)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*task <Task pending*, created at *test_inner.py:*"])
