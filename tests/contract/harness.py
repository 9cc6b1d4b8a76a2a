"""Running one scenario on a fresh hub and reading what happened, without timed assertions."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from typing import Any, Awaitable, Callable, Iterable, Iterator

import pytest
from _reports import Reports

import bridges

from .flavors import Flavor


class Marker:
    """A value whose identity the tests check (``is``, not ``==``)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<Marker {self.label}>"


class ContractError(Exception):
    """The exception the callees raise; each test makes its own object."""


def frameworks_of(*flavors: Flavor) -> list[str]:
    names: set[str] = set()
    for flavor in flavors:
        names.update(flavor.frameworks)
    return sorted(names)


def skip_unless_available(*flavors: Flavor) -> None:
    for flavor in flavors:
        reason = flavor.unavailable()
        if reason is not None:
            pytest.skip(f"the {flavor.name} flavor is not available: {reason}")


def run_on_hub(
    scenario: Callable[[Reports], Awaitable[Any]],
    frameworks: Iterable[str],
    *,
    stop_timeout: float = 5.0,
    loop_factory: Any = None,
) -> tuple[Any, Reports]:
    """``bridges.run`` a scenario; return its result and everything reported, start to finish.

    The reports cover the run, the hub's stop sequence, and garbage collected
    after the hub stopped: garbage is collected before the stop (so "Unhandled
    error in Deferred" and "exception never retrieved" arrive while the hub
    still listens) and again after it, when a future's report still reaches the
    closed loop's handler and Twisted's goes to its global log, which is
    watched for that collection.  Callers assert on every report:
    :func:`assert_nothing_reported` when none is expected.
    """
    reports = Reports()

    async def main() -> Any:
        reports.install()
        try:
            return await scenario(reports)
        finally:
            gc.collect()
            await asyncio.sleep(0)

    result = bridges.run(
        main, frameworks=list(frameworks), stop_timeout=stop_timeout, loop_factory=loop_factory
    )
    with _twisted_log_recorded(reports):
        gc.collect()
    return result, reports


@contextlib.contextmanager
def _twisted_log_recorded(reports: Reports) -> Iterator[None]:
    """Errors Twisted logs meanwhile become reports (its log outlives the hub's observer)."""
    if "twisted.logger" not in sys.modules:
        yield
        return
    from twisted.logger import globalLogPublisher

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None or event.get("isError"):
            failure = event.get("log_failure")
            reports.contexts.append(
                {
                    "message": "Twisted logged an error after the hub stopped",
                    "exception": getattr(failure, "value", None),
                }
            )

    globalLogPublisher.addObserver(observe)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observe)


def assert_nothing_reported(reports: Reports, what: str) -> None:
    """Nothing reached the error sink: not while running, not at stop, not at collection."""
    assert not reports.contexts, (
        f"{what}: the error sink received reports (while running, at stop or at garbage "
        f"collection) that nobody caused: {reports.describe()}"
    )


async def settle(aw: Any, what: str, timeout: float = 15.0) -> tuple[str, Any]:
    """Await ``aw`` and say how it ended: ("result", value), ("error", exc) or ("cancelled", exc).

    Bounded, so a breach that loses an outcome fails as a sentence instead of hanging.
    """

    async def outcome() -> tuple[str, Any]:
        try:
            return ("result", await aw)
        except asyncio.CancelledError as exc:
            return ("cancelled", exc)
        except Exception as exc:  # noqa: BLE001 - the outcome is what we inspect
            return ("error", exc)

    waiter = asyncio.ensure_future(outcome())
    done, _ = await asyncio.wait({waiter}, timeout=timeout)
    if not done:
        waiter.cancel()
        raise AssertionError(f"{what} never finished (waited {timeout:g}s): an outcome was lost")
    return waiter.result()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Let the loop run until ``predicate()`` holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    passes = 0
    while not predicate():
        if time.monotonic() > deadline:
            return False
        passes += 1
        # Spin a few passes first (most things settle within one or two), then
        # sleep a little so worker threads get the CPU.
        await asyncio.sleep(0 if passes < 50 else 0.001)
    return True


class InFlight:
    """One call of ``caller->callee`` on a pending primitive, awaited by a task of the test."""

    def __init__(self, caller: Flavor, callee: Flavor) -> None:
        from .flavors import Trace

        self.caller = caller
        self.callee = callee
        self.trace = Trace()
        handle = caller.call(self.trace, lambda: callee.pending(self.trace))
        self.handle = handle
        self.outcome: asyncio.Future[tuple[str, Any]] = asyncio.ensure_future(
            settle(caller.outcome(handle), f"{caller.name}->{callee.name}", timeout=60)
        )

    def waiting(self) -> bool:
        return self.trace.started and self.caller.can_cancel_call(self.trace)

    def __repr__(self) -> str:
        return f"{self.caller.name}->{self.callee.name}"


async def start_in_flight(flavors: Iterable[Flavor]) -> list[InFlight]:
    """A call of every ordered pair of ``flavors`` waiting on a primitive that never resolves."""
    chosen = list(flavors)
    calls = [InFlight(caller, callee) for caller in chosen for callee in chosen]
    ready = await eventually(lambda: all(call.waiting() for call in calls))
    assert ready, f"these calls never started waiting: {[c for c in calls if not c.waiting()]}"
    return calls


def available_flavors() -> list[Flavor]:
    from .flavors import FLAVORS

    return [flavor for flavor in FLAVORS if flavor.unavailable() is None]
