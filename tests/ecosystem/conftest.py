"""Third-party software on the hub: run with ``tox -e ecosystem`` (or ``pytest tests/ecosystem``).

These tests install and run software nobody here wrote (Scrapy, treq, klein,
Flask, waitress, supervisor's medusa, jupyter_server, crochet, Tornado's own
test suite), so the main suite leaves them out: they run only when this
directory (or a file in it) is named on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from _ecosystem import Child

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.resolve() == HERE / "conftest.py":
        return None
    for arg in config.args:
        named = Path(arg.split("::")[0]).resolve()
        if named == HERE or HERE in named.parents:
            return None
    return True


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children started by the test; every one is killed at teardown, whatever happened."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            child.kill()


_summaries: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # user_properties travel from xdist's workers with the report.
    if report.when == "call":
        _summaries.extend(str(value) for key, value in report.user_properties if key == "summary")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for summary in _summaries:
        terminalreporter.write_sep("-", "ecosystem figures")
        terminalreporter.write_line(summary)
