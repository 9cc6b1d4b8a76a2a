"""Scrapy on the hub: a crawl of a local site with async callbacks and an async pipeline."""

from __future__ import annotations

import pytest
from _ecosystem import run_app

pytest.importorskip("scrapy")
pytestmark = pytest.mark.timeout(180)


def test_a_crawl_with_async_callbacks_and_pipeline_finds_every_page_twice_per_process() -> None:
    result = run_app("scrapy_crawl")
    assert len(result["runs"]) == 2
    for run in result["runs"]:
        assert run == {"titles": result["expected"], "pipeline_in_tasks": True}
    assert "Traceback" not in result["stderr"]
