"""Shared by the pytest plugin's tests: run an inner pytest session with the plugin loaded."""

from __future__ import annotations

import importlib.metadata
import textwrap

import pytest

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
{extra}
"""


def _pytest11_entry_points() -> list[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):  # Python 3.10+
        return list(found.select(group="pytest11"))
    return list(found.get("pytest11", []))  # type: ignore[attr-defined]


def _plugin_args() -> list[str]:
    # Once the package's pytest11 entry point is installed the plugin loads by
    # itself, and naming it again with -p would register it twice.
    installed = any(
        entry.name == "bridges" and entry.value == "bridges.pytest_plugin"
        for entry in _pytest11_entry_points()
    )
    return [] if installed else ["-p", "bridges.pytest_plugin"]


def run_inner(
    pytester: pytest.Pytester, source: str, *args: str, ini: str = ""
) -> pytest.RunResult:
    pytester.makeini(INI.format(extra=textwrap.dedent(ini)))
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", *args)
