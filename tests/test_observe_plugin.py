"""The plugin's blocking detector: a warning by default, a failure with bridges_slow = fail."""

from __future__ import annotations

import pytest
from _pytest_plugin_helpers import run_inner

pytest_plugins = ["pytester"]

BLOCKING_TEST = """
    import asyncio
    import time

    import pytest


    def crunch_numbers():
        time.sleep(0.3)


    @pytest.mark.bridges(frameworks=None{marker})
    async def test_blocks():
        await asyncio.sleep(0.05)
        crunch_numbers()
        await asyncio.sleep(0)


    @pytest.mark.bridges(frameworks=None{marker})
    async def test_quick():
        await asyncio.sleep(0.01)
"""


def test_a_blocking_test_is_a_warning_by_default(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester, BLOCKING_TEST.format(marker=""), ini="bridges_slow_callback = 0.05"
    )
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*SlowCallbackWarning*test_inner.test_blocks (asyncio)*"])


def test_bridges_slow_fail_turns_the_report_into_a_failure(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        BLOCKING_TEST.format(marker=""),
        ini="bridges_slow_callback = 0.05\nbridges_slow = fail",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_blocks held its loop past bridges_slow_callback 1 time(s)*",
            "*test_inner.test_blocks (asyncio) has held the event loop*",
            "*in crunch_numbers*",
        ]
    )


def test_the_marker_sets_the_threshold_of_one_test(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester, BLOCKING_TEST.format(marker=", slow_callback=0.05"), ini="bridges_slow = fail"
    )
    result.assert_outcomes(passed=1, failed=1)


def test_without_a_threshold_nothing_is_reported(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, BLOCKING_TEST.format(marker=""), ini="bridges_slow = fail")
    result.assert_outcomes(passed=2)


def test_a_bad_threshold_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, BLOCKING_TEST.format(marker=""), ini="bridges_slow_callback = -1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bridges_slow_callback must be a positive number*"])
