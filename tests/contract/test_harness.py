"""``run_on_hub`` returns what was reported at stop and at garbage collection after the stop.

The contract tests assert that nothing was reported; these tests show the
reports they would see: an error raised while the hub stops, a future whose
exception nobody retrieved and a failed Deferred nobody handled, each
collected only after the hub has stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .harness import Reports, assert_nothing_reported, run_on_hub


class StopError(Exception):
    pass


class Cycle:
    """Garbage only a collection frees: it refers to itself."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.me = self


@pytest.mark.timeout(60)
def test_an_error_raised_while_the_hub_stops_is_reported() -> None:
    async def scenario(reports: Reports) -> None:
        async def fails_when_cancelled() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise StopError("raised at stop") from None

        asyncio.get_running_loop().create_task(fails_when_cancelled())
        await asyncio.sleep(0)

    _, reports = run_on_hub(scenario, [])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()
    with pytest.raises(AssertionError, match="raised at stop"):
        assert_nothing_reported(reports, "a task failing at stop")


@pytest.mark.timeout(60)
def test_a_future_exception_collected_after_the_stop_is_reported() -> None:
    async def scenario(reports: Reports) -> None:
        async def leave_garbage() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                future = asyncio.get_running_loop().create_future()
                future.set_exception(StopError("never retrieved"))
                Cycle(future)
                raise

        asyncio.get_running_loop().create_task(leave_garbage())
        await asyncio.sleep(0)

    _, reports = run_on_hub(scenario, [])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()


@pytest.mark.timeout(60)
def test_a_failed_deferred_collected_after_the_stop_is_reported() -> None:
    defer = pytest.importorskip("twisted.internet.defer")

    async def scenario(reports: Reports) -> None:
        async def leave_garbage() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                Cycle(defer.fail(StopError("unhandled in a Deferred")))
                raise

        asyncio.get_running_loop().create_task(leave_garbage())
        await asyncio.sleep(0)

    _, reports = run_on_hub(scenario, ["twisted"])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()
