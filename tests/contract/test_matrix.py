"""The contract matrix: every ordered pair ``caller->callee`` of flavors × every contract row.

``caller->callee`` means: code of the *caller* flavor awaits a primitive of
the *callee* flavor, each through the bridge that flavor's users write
(see :mod:`.flavors`).  Both directions of every pair are in the matrix, and
so is each flavor with itself (the baseline).

Known contract breaches are listed in :data:`BREACHES` and run as
``xfail(strict=True)``: they fail while the breach lasts and turn the suite
red the day the adapter is fixed, so the entry gets removed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
from typing import Any

import pytest

from bridges import current_hub

from .flavors import CANCEL_MESSAGE, FLAVORS, Flavor, Trace
from .harness import (
    ContractError,
    Marker,
    Reports,
    assert_nothing_reported,
    eventually,
    frameworks_of,
    run_on_hub,
    settle,
    skip_unless_available,
)

ROWS = (
    "result_identity",
    "exception_identity",
    "cancel_from_awaiting_side",
    "cancel_from_native_side",
    "context",
    "thread",
    "nothing_lost",
)

BREACHES: dict[tuple[str, str, str], str] = {}
"""(caller, callee, row) -> what breaks; "*" matches any flavor.  See docs/contract.md."""

LOAD_PER_PAIR = 40
"""Concurrent calls per pair in the *nothing lost* row (the load suite does 10,000 mixed)."""


def _breach(caller: str, callee: str, row: str) -> str | None:
    for key in ((caller, callee, row), ("*", callee, row), (caller, "*", row)):
        if key in BREACHES:
            return BREACHES[key]
    return None


def _cases() -> list[Any]:
    cases = []
    for caller in FLAVORS:
        for callee in FLAVORS:
            for row in ROWS:
                reason = _breach(caller.name, callee.name, row)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                cases.append(
                    pytest.param(
                        caller, callee, row, id=f"{caller.name}->{callee.name}-{row}", marks=marks
                    )
                )
    return cases


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("caller", "callee", "row"), _cases())
def test_contract(caller: Flavor, callee: Flavor, row: str) -> None:
    _check(caller, callee, row, loop_factory=None)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("caller", "callee", "row"), _cases())
def test_contract_on_uvloop(caller: Flavor, callee: Flavor, row: str) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed")
    _check(caller, callee, row, loop_factory="uvloop")


def _check(caller: Flavor, callee: Flavor, row: str, loop_factory: str | None) -> None:
    skip_unless_available(caller, callee)
    scenario = ROW_SCENARIOS[row]

    async def run(reports: Reports) -> None:
        await scenario(caller, callee, reports)

    _, reports = run_on_hub(run, frameworks_of(caller, callee), loop_factory=loop_factory)
    assert_nothing_reported(reports, f"{_pair(caller, callee)}, row {row}")


def _pair(caller: Flavor, callee: Flavor) -> str:
    return f"{caller.name} code awaiting a {callee.name} primitive"


async def _result_identity(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    value = Marker("result")
    trace = Trace()
    handle = caller.call(trace, lambda: callee.resolving(value, trace))
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert kind == "result", (
        f"{_pair(caller, callee)} should have got the primitive's result, but it ended with "
        f"{kind}: {got!r}"
    )
    assert got is value, (
        f"{_pair(caller, callee)} got {got!r}, which is not the very object the "
        f"{callee.name} primitive resolved with ({value!r})"
    )


async def _exception_identity(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    exc = ContractError(f"raised by {callee.name} code")
    trace = Trace()
    handle = caller.call(trace, lambda: callee.failing(exc, trace))
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert trace.caller_caught is exc, (
        f"{_pair(caller, callee)} should have caught the very exception the callee raised "
        f"({exc!r}), but its code saw {trace.caller_caught!r}"
    )
    assert kind == "error", f"{_pair(caller, callee)} should fail, but ended with {kind}: {got!r}"
    assert got is exc, (
        f"{_pair(caller, callee)} should end with the callee's exception object, but ended "
        f"with {kind}: {got!r}"
    )
    frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
    raiser = f"fail_in_{callee.name}"
    assert raiser in frames, (
        f"the exception {caller.name} code received should keep its original traceback, "
        f"with the frame of {raiser}() where it was raised, but its frames are {frames}"
    )


async def _cancel_from_awaiting_side(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    trace = Trace()
    handle = caller.call(trace, lambda: callee.pending(trace))
    ready = await eventually(lambda: trace.started and caller.can_cancel_call(trace))
    assert ready, f"{_pair(caller, callee)} never got to wait on the pending primitive"
    caller.cancel_call(handle, trace)
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert await eventually(lambda: trace.callee_cancelled), (
        f"cancelling the wait of {caller.name} code should cancel the {callee.name} "
        "primitive natively, but the primitive never saw its cancellation"
    )
    assert isinstance(trace.caller_caught, caller.own_cancel_errors), (
        f"{caller.name} code whose wait it cancelled itself should see "
        f"{' or '.join(t.__name__ for t in caller.own_cancel_errors)}, "
        f"but it saw {trace.caller_caught!r}"
    )
    # Python carries the cancel message through awaited futures and tasks from 3.11 on
    # (bpo-45390); before that even plain asyncio awaiting a task loses it.
    if (
        sys.version_info >= (3, 11)
        and isinstance(trace.caller_caught, asyncio.CancelledError)
        and caller.name in ("asyncio", "generator")
    ):
        assert CANCEL_MESSAGE in trace.caller_caught.args, (
            f"{caller.name} code should see the original CancelledError (with the message "
            f"{CANCEL_MESSAGE!r} its task was cancelled with), not a new one: it saw "
            f"{trace.caller_caught!r}"
        )
    assert kind == "cancelled", (
        f"{caller.name} code cancelled from its own side should end cancelled, but it "
        f"ended with {kind}: {got!r}"
    )


async def _cancel_from_native_side(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    trace = Trace()
    handle = caller.call(trace, lambda: callee.pending(trace))
    ready = await eventually(lambda: trace.started and caller.can_cancel_call(trace))
    assert ready, f"{_pair(caller, callee)} never got to wait on the pending primitive"
    callee.cancel_natively(trace)
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert isinstance(trace.caller_caught, caller.cancelled_errors), (
        f"when {callee.name} cancels its primitive natively, the {caller.name} code awaiting "
        f"it should see {' or '.join(t.__name__ for t in caller.cancelled_errors)}, but it "
        f"saw {trace.caller_caught!r}"
    )
    assert kind == "cancelled", (
        f"{caller.name} code whose awaited primitive was cancelled should end cancelled, but "
        f"it ended with {kind}: {got!r}"
    )


async def _context(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    value = Marker("context")
    trace = Trace(ctx_value=value)
    handle = caller.call(trace, lambda: callee.resolving(value, trace))
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert kind == "result", f"{_pair(caller, callee)} ended with {kind}: {got!r}"
    assert trace.callee_ctx == [value], (
        f"the contextvar that {caller.name} code set should be visible in the {callee.name} "
        f"code it called, but the callee saw {trace.callee_ctx!r}"
    )


async def _thread(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    hub_thread = threading.get_ident()
    trace = Trace()
    handle = caller.call(trace, lambda: callee.resolving(Marker("thread"), trace))
    kind, got = await settle(caller.outcome(handle), _pair(caller, callee))
    assert kind == "result", f"{_pair(caller, callee)} ended with {kind}: {got!r}"
    if callee.callee_thread_is_hub:
        assert trace.callee_threads == [hub_thread], (
            f"{callee.name} code called from {caller.name} code should run on the hub's "
            f"thread {hub_thread}, but it ran on {trace.callee_threads}"
        )
    if caller.caller_thread_is_hub:
        assert trace.caller_threads == [hub_thread, hub_thread], (
            f"{caller.name} code should start and resume on the hub's thread {hub_thread} "
            f"after awaiting a {callee.name} primitive, but it ran on {trace.caller_threads}"
        )
    else:
        assert hub_thread not in trace.caller_threads, (
            f"{caller.name} code runs in worker threads by design, yet it ran on the hub's "
            f"thread: {trace.caller_threads}"
        )


async def _nothing_lost(caller: Flavor, callee: Flavor, reports: Reports) -> None:
    calls = []
    for index in range(LOAD_PER_PAIR):
        trace = Trace()
        if index % 2:
            expected: Any = ContractError(f"call {index}")

            def make(exc: Any = expected, trace: Trace = trace) -> Any:
                return callee.failing(exc, trace)
        else:
            expected = Marker(f"call {index}")

            def make(value: Any = expected, trace: Trace = trace) -> Any:
                return callee.resolving(value, trace)

        calls.append((expected, caller.outcome(caller.call(trace, make))))
    outcomes = [
        await settle(aw, f"call {i} of {_pair(caller, callee)}") for i, (_, aw) in enumerate(calls)
    ]
    wrong = [
        (index, expected, outcome)
        for index, ((expected, _), outcome) in enumerate(zip(calls, outcomes))
        if outcome[1] is not expected
    ]
    assert not wrong, (
        f"of {LOAD_PER_PAIR} concurrent calls of {_pair(caller, callee)}, {len(wrong)} did not "
        f"end with their own result or exception, e.g. call {wrong[0][0]} expected "
        f"{wrong[0][1]!r} and got {wrong[0][2]!r}"
    )
    hub = current_hub()
    assert await eventually(lambda: not hub.pending_tasks()), (
        f"every call of {_pair(caller, callee)} finished, yet tasks the hub started for "
        f"legacy code are still pending: {hub.pending_tasks()!r}"
    )
    awaited = {id(expected) for expected, _ in calls if isinstance(expected, BaseException)}
    reported_awaited = [exc for exc in reports.exceptions if id(exc) in awaited]
    assert not reported_awaited, (
        f"exceptions that {caller.name} code awaited and received were also reported to the "
        f"error sink as unhandled ({len(reported_awaited)} of {len(awaited)}): "
        f"{reports.describe()}"
    )
    assert not reports.contexts, (
        f"the error sink received reports nobody caused: {reports.describe()}"
    )


ROW_SCENARIOS = {
    "result_identity": _result_identity,
    "exception_identity": _exception_identity,
    "cancel_from_awaiting_side": _cancel_from_awaiting_side,
    "cancel_from_native_side": _cancel_from_native_side,
    "context": _context,
    "thread": _thread,
    "nothing_lost": _nothing_lost,
}
