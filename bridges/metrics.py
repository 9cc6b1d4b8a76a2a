"""The hub's accounting through the ecosystem's tools: Prometheus, logging, a dump over time.

Nothing here runs a server of its own: :class:`HubCollector` plugs into
``prometheus_client`` (install ``tulip-bridges[metrics]``), which the service
already exposes however it likes (``prometheus_client.start_http_server``,
its WSGI/ASGI app, a push gateway)::

    from prometheus_client import REGISTRY
    from bridges.metrics import HubCollector

    async def main():
        REGISTRY.register(HubCollector(bridges.current_hub()))
        ...

:func:`log_every` logs the same figures at a set interval, and
:func:`dump_every` appends them to a file as JSON lines, which
``python -m bridges report DUMP -o chart.png`` draws as the share of loop
time by framework over time: the picture of a migration.  Both run as tasks
of the hub and end with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ._errors import UsageError
from ._hub import current_hub

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["HubCollector", "dump_every", "log_every", "shares"]

log = logging.getLogger("bridges.metrics")


class HubCollector:
    """A ``prometheus_client`` collector of one hub's accounting, labelled by framework.

    Metrics (each with a ``framework`` label where it applies):

    * ``bridges_loop_seconds_total``: loop time spent in each framework's dispatches
      (estimated from a sample of them, unless accounting is exact);
    * ``bridges_dispatches_total``: how many dispatches each framework made
      (asyncio's only with exact accounting on the stdlib loop);
    * ``bridges_loop_busy_seconds_total``: the loop's busy time (the loop
      thread's CPU time, and on Linux the time it was ready to run and waited
      for a CPU since the figures were first read; with exact accounting on
      the stdlib loop, its time outside ``select``);
    * ``bridges_slow_callbacks_total``: dispatches the blocking detector reported;
    * ``bridges_slowest_dispatch_seconds``: the slowest dispatches so far,
      labelled by framework and the user's function.

    Safe to collect from the exporter's thread: it only reads the figures.
    """

    def __init__(self, hub: Hub, *, prefix: str = "bridges") -> None:
        self.hub = hub
        self.prefix = prefix

    def describe(self) -> list[Any]:
        return []  # the metrics are created at collect time; nothing to check up front

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.hub.stats()
        prefix = self.prefix
        seconds = CounterMetricFamily(
            f"{prefix}_loop_seconds",
            "Event loop time spent in each framework's dispatches.",
            labels=["framework"],
        )
        count = CounterMetricFamily(
            f"{prefix}_dispatches", "Dispatches each framework made.", labels=["framework"]
        )
        for framework, figures in sorted(stats["frameworks"].items()):
            seconds.add_metric([framework], figures["seconds"])
            if figures["count"] is not None:
                count.add_metric([framework], figures["count"])
        yield seconds
        yield count
        if stats["busy_seconds"] is not None:
            busy = CounterMetricFamily(
                f"{prefix}_loop_busy_seconds", "Event loop time not spent waiting for events."
            )
            busy.add_metric([], stats["busy_seconds"])
            yield busy
        stalls = CounterMetricFamily(
            f"{prefix}_slow_callbacks",
            "Dispatches that held the loop past slow_callback (the blocking detector).",
        )
        stalls.add_metric([], stats["stalls"])
        yield stalls
        slowest = GaugeMetricFamily(
            f"{prefix}_slowest_dispatch_seconds",
            "The slowest single dispatches so far, by framework and the user's function.",
            labels=["framework", "function"],
        )
        for entry in stats["slowest"]:
            slowest.add_metric([entry["framework"], entry["function"]], entry["seconds"])
        yield slowest


def shares(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Each framework's share of the loop's busy time between two ``hub.stats()``.

    Fractions of the busy time (they add up to 1.0 when the loop was busy at
    all); ``"idle"`` is the fraction of wall time the loop waited for events.
    """
    spent = {
        name: figures["seconds"] - before["frameworks"].get(name, {}).get("seconds", 0.0)
        for name, figures in after["frameworks"].items()
    }
    busy = sum(max(value, 0.0) for value in spent.values())
    result = {name: (max(value, 0.0) / busy if busy else 0.0) for name, value in spent.items()}
    wall = after["wall_seconds"] - before["wall_seconds"]
    if wall > 0 and after["busy_seconds"] is not None and before["busy_seconds"] is not None:
        result["idle"] = max(0.0, 1.0 - (after["busy_seconds"] - before["busy_seconds"]) / wall)
    return result


def log_every(
    interval: float, *, logger: logging.Logger | None = None, level: int = logging.INFO
) -> asyncio.Task[None]:
    """Log each framework's share of loop time every ``interval`` seconds, until the hub stops.

    One line per interval, e.g. ``bridges: loop time in the last 10s: twisted 61%
    (5210 dispatches), asyncio 27%, gevent 12% (820); idle 71%``; the figures
    are also attached to the record as ``record.bridges_stats`` (the
    ``hub.stats()`` of that moment) for structured log handlers.
    """
    target = logger or log

    def emit(before: dict[str, Any], after: dict[str, Any], elapsed: float) -> None:
        share = shares(before, after)
        parts = []
        for name, fraction in sorted(share.items(), key=lambda item: -item[1]):
            if name == "idle":
                continue
            count = after["frameworks"][name]["count"]
            done = "" if count is None else count - _count(before, name)
            parts.append(f"{name} {fraction:.0%}" + (f" ({done} dispatches)" if done else ""))
        idle = f"; idle {share['idle']:.0%}" if "idle" in share else ""
        target.log(
            level,
            "bridges: loop time in the last %.0fs: %s%s",
            elapsed,
            ", ".join(parts) or "nothing ran",
            idle,
            extra={"bridges_stats": after},
        )

    return _every(interval, emit, "bridges: log_every")


def dump_every(interval: float, path: str) -> asyncio.Task[None]:
    """Append ``hub.stats()`` to ``path`` as one JSON line every ``interval`` seconds.

    Each line also holds ``"time"`` (Unix time of the sample).  ``python -m
    bridges report path -o chart.png`` draws the file.  Runs until the hub stops;
    the last sample is written when it does.
    """

    def write(_: dict[str, Any], after: dict[str, Any], elapsed: float) -> None:
        with open(path, "a", encoding="utf-8") as dump:
            dump.write(json.dumps({"time": time.time(), **after}) + "\n")

    return _every(interval, write, "bridges: dump_every")


def _count(stats: dict[str, Any], name: str) -> int:
    return stats["frameworks"].get(name, {}).get("count") or 0


def _every(
    interval: float, emit: Callable[[dict[str, Any], dict[str, Any], float], None], name: str
) -> asyncio.Task[None]:
    if not interval > 0:
        raise UsageError(f"{name}: the interval must be a positive number of seconds.")
    hub = current_hub()
    if hub.accounting is None:
        raise UsageError(
            f"{name}: accounting is off on this hub (BRIDGES_ACCOUNTING=0 or "
            "accounting=False), so there is nothing to report. Turn it on."
        )

    async def every() -> None:
        before = hub.stats()
        try:
            while True:
                await asyncio.sleep(interval)
                after = hub.stats()
                emit(before, after, after["wall_seconds"] - before["wall_seconds"])
                before = after
        finally:
            after = hub.stats()
            elapsed = after["wall_seconds"] - before["wall_seconds"]
            if elapsed > interval / 10:
                emit(before, after, elapsed)

    return hub.spawn(every(), name=name)
