"""``run_on_hub`` returns what was reported at stop and at garbage collection after the stop.

The contract tests assert that nothing was reported; these tests show the
reports they would see: an error raised while the hub stops, a future whose
exception nobody retrieved and a failed Deferred nobody handled, each
collected only after the hub has stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest

from .harness import Reports, assert_nothing_reported, run_on_hub


class StopError(Exception):
    pass


class Cycle:
    """Garbage only a collection frees: it refers to itself."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.me = self


def at_stop(when_cancelled: Callable[[], None]) -> Callable[[Reports], Awaitable[None]]:
    """A scenario leaving a task behind for the stop to cancel; then it runs ``when_cancelled``."""

    async def scenario(reports: Reports) -> None:
        async def left_behind() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                when_cancelled()
                raise

        asyncio.get_running_loop().create_task(left_behind())
        await asyncio.sleep(0)

    return scenario


@pytest.mark.timeout(60)
def test_an_error_raised_while_the_hub_stops_is_reported() -> None:
    def fail() -> None:
        raise StopError("raised at stop")

    _, reports = run_on_hub(at_stop(fail), [])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()
    with pytest.raises(AssertionError, match="raised at stop"):
        assert_nothing_reported(reports, "a task failing at stop")


@pytest.mark.timeout(60)
def test_a_future_exception_collected_after_the_stop_is_reported() -> None:
    def leave_garbage() -> None:
        future = asyncio.get_running_loop().create_future()
        future.set_exception(StopError("never retrieved"))
        Cycle(future)

    _, reports = run_on_hub(at_stop(leave_garbage), [])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()


@pytest.mark.timeout(60)
def test_a_failed_deferred_collected_after_the_stop_is_reported() -> None:
    defer = pytest.importorskip("twisted.internet.defer")

    def leave_garbage() -> None:
        Cycle(defer.fail(StopError("unhandled in a Deferred")))

    _, reports = run_on_hub(at_stop(leave_garbage), ["twisted"])
    assert any(isinstance(exc, StopError) for exc in reports.exceptions), reports.describe()
