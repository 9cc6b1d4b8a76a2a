"""A Scrapy crawl on the hub: async callbacks, an async pipeline, twice per process.

Default settings except the reactor's name (Scrapy refuses any reactor other
than the one ``TWISTED_REACTOR`` names) and quiet logs.  The second crawl
runs on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from typing import ClassVar

import _site
import scrapy
from scrapy.crawler import CrawlerRunner

import bridges

PORT = _site.serve()


class Collect:
    """An item pipeline whose process_item is a coroutine using asyncio."""

    items: ClassVar[list[dict[str, object]]] = []

    async def process_item(self, item: dict[str, object], spider: object = None) -> object:
        await asyncio.sleep(0.001)
        item["pipeline_task"] = asyncio.current_task() is not None
        Collect.items.append(item)
        return item


class Site(scrapy.Spider):
    name = "site"
    start_urls: ClassVar[list[str]] = [f"http://127.0.0.1:{PORT}/page0.html"]

    async def parse(self, response: scrapy.http.Response) -> object:
        await asyncio.sleep(0.001)  # asyncio itself, not a Deferred
        yield {"title": response.css("h1::text").get()}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)


SETTINGS = {
    "TWISTED_REACTOR": "bridges.twisted.HubReactor",
    "ITEM_PIPELINES": {Collect: 100},
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
}


async def crawl() -> dict[str, object]:
    Collect.items = []
    runner = CrawlerRunner(SETTINGS)
    await bridges.awaitable(runner.crawl(Site))
    return {
        "titles": sorted({str(item["title"]) for item in Collect.items}),
        "pipeline_in_tasks": all(item["pipeline_task"] for item in Collect.items),
    }


def main() -> None:
    runs = [bridges.run(crawl, frameworks=["twisted"])]
    uvloop = "uvloop" if importlib.util.find_spec("uvloop") else None
    runs.append(bridges.run(crawl, frameworks=["twisted"], loop_factory=uvloop))
    print(json.dumps({"runs": runs, "expected": _site.reachable(), "second_loop": uvloop}))


if __name__ == "__main__":
    main()
