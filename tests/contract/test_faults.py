"""Faults: a failing callback, a stop with everything in flight, SIGTERM with requests in flight."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import bridges

from .flavors import BY_NAME, FLAVORS, Flavor, Trace, _asyncore
from .harness import (
    ContractError,
    Marker,
    Reports,
    available_flavors,
    eventually,
    frameworks_of,
    run_on_hub,
    settle,
    skip_unless_available,
    start_in_flight,
)

# -- one callback of each framework raises ------------------------------------------


def _asyncio_callback(exc: BaseException) -> None:
    def raise_in_asyncio_callback() -> None:
        raise exc

    asyncio.get_running_loop().call_soon(raise_in_asyncio_callback)


def _twisted_callback(exc: BaseException) -> None:
    from bridges import twisted as bt

    def raise_in_twisted_callback() -> None:
        raise exc

    bt.get_reactor().callLater(0, raise_in_twisted_callback)


def _tornado_callback(exc: BaseException) -> None:
    from bridges import tornado as btn

    def raise_in_tornado_callback() -> None:
        raise exc

    btn.ioloop().add_callback(raise_in_tornado_callback)


def _gevent_callback(exc: BaseException) -> None:
    from bridges import gevent as bg

    def raise_in_gevent_callback() -> None:
        raise exc

    bg.get_hub().loop.run_callback(raise_in_gevent_callback)


def _asyncore_callback(exc: BaseException) -> None:
    asyncore = _asyncore()
    ours, peer = socket.socketpair()

    class Faulty(asyncore.dispatcher):  # type: ignore[misc, name-defined]
        def writable(self) -> bool:
            return False

        def handle_read(self) -> None:
            self.recv(1)
            self.close()
            peer.close()
            raise exc

        def handle_error(self) -> None:
            # Escapes, as it would escape asyncore.loop(): nobody handles it.
            raise

    Faulty(ours)
    peer.send(b"!")


FAULTS: dict[str, tuple[Flavor, Callable[[BaseException], None]]] = {
    "asyncio": (BY_NAME["asyncio"], _asyncio_callback),
    "twisted": (BY_NAME["twisted"], _twisted_callback),
    "tornado": (BY_NAME["tornado"], _tornado_callback),
    "gevent": (BY_NAME["gevent"], _gevent_callback),
    "asyncore": (BY_NAME["asyncore"], _asyncore_callback),
}


async def _every_pair_resolves(flavors: list[Flavor]) -> list[str]:
    """Start a call of every ordered pair; return the pairs that did not get their own result."""
    calls = []
    for caller in flavors:
        for callee in flavors:
            value = Marker(f"{caller.name}->{callee.name}")
            trace = Trace()

            def make(callee: Flavor = callee, value: Any = value, trace: Trace = trace) -> Any:
                return callee.resolving(value, trace)

            calls.append((f"{caller.name}->{callee.name}", value, caller.call(trace, make), caller))
    wrong = []
    for pair, value, handle, caller in calls:
        kind, got = await settle(caller.outcome(handle), pair)
        if kind != "result" or got is not value:
            wrong.append(f"{pair} ended with {kind}: {got!r}")
    return wrong


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framework", list(FAULTS))
def test_an_exception_in_a_callback_is_reported_once_and_stops_no_other_work(
    framework: str,
) -> None:
    flavor, inject = FAULTS[framework]
    skip_unless_available(flavor)
    flavors = available_flavors()
    exc = ContractError(f"raised in a {framework} callback")

    async def scenario(reports: Reports) -> None:
        hub = bridges.current_hub()
        in_flight = asyncio.ensure_future(_every_pair_resolves(flavors))
        inject(exc)
        assert await eventually(lambda: exc in reports.exceptions), (
            f"an exception raised in a {framework} callback should reach the hub's error "
            f"sink, but only these arrived: {reports.describe() or 'nothing'}"
        )
        wrong = await in_flight
        assert not wrong, (
            f"work in flight when a {framework} callback raised should finish, but: {wrong}"
        )
        wrong = await _every_pair_resolves(flavors)
        assert not wrong, f"work started after a {framework} callback raised failed: {wrong}"
        assert hub.running, f"the hub stopped after a {framework} callback raised"

    _, reports = run_on_hub(scenario, frameworks_of(*flavors))
    times = sum(1 for reported in reports.exceptions if reported is exc)
    assert times == 1, (
        f"an exception raised in a {framework} callback should be reported exactly once, "
        f"but it was reported {times} times: {reports.describe()}"
    )
    others = [reported for reported in reports.exceptions if reported is not exc]
    assert not others, f"reports nobody caused reached the error sink: {reports.describe()}"


# -- an exception nobody awaited ----------------------------------------------------------

UNAWAITED = ["asyncio", "twisted", "tornado", "gevent"]
"""Flavors whose failing primitive runs without being awaited.  A concurrent future's
failure is never reported by concurrent.futures itself, a generator only runs when
awaited, and asyncore's unhandled errors are the callback case above."""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", UNAWAITED)
def test_an_exception_nobody_awaited_is_reported_once(name: str) -> None:
    flavor = BY_NAME[name]
    skip_unless_available(flavor)
    message = f"raised by a {name} primitive nobody awaited"

    def is_ours(reported: BaseException | None) -> bool:
        return isinstance(reported, ContractError) and str(reported) == message

    async def scenario(reports: Reports) -> None:
        trace = Trace()
        # The test keeps no reference to the exception: its traceback's frames would keep
        # the primitive (a Deferred is a local of Twisted's inlineCallbacks frame) alive.
        primitive = flavor.failing(ContractError(message), trace)
        if asyncio.iscoroutine(primitive):
            primitive = asyncio.ensure_future(primitive)
        assert await eventually(lambda: bool(trace.callee_threads)), (
            f"the failing {name} primitive never ran"
        )
        del primitive
        gc.collect()
        assert await eventually(lambda: any(map(is_ours, reports.exceptions))), (
            f"an exception raised by a {name} primitive nobody awaited should be reported "
            f"through the loop's exception handler, but nothing was: {reports.describe()}"
        )
        for _ in range(5):
            gc.collect()
            await asyncio.sleep(0)

    _, reports = run_on_hub(scenario, list(flavor.frameworks))
    times = sum(1 for reported in reports.exceptions if is_ours(reported))
    assert times == 1, (
        f"an exception raised by a {name} primitive nobody awaited should be reported once, "
        f"but it was reported {times} times: {reports.describe()}"
    )


# -- a stop while every framework has work in flight ------------------------------------

STOP_TIMEOUT = 2.0


@pytest.mark.timeout(60)
def test_a_stop_with_every_pair_in_flight_cancels_them_within_the_bounded_waits() -> None:
    flavors = available_flavors()
    calls: list[Any] = []

    async def scenario(reports: Reports) -> None:
        calls.extend(await start_in_flight(flavors))
        bridges.current_hub().request_stop("the contract suite")
        await asyncio.get_running_loop().create_future()

    started = time.perf_counter()
    result, reports = run_on_hub(scenario, frameworks_of(*flavors), stop_timeout=STOP_TIMEOUT)
    elapsed = time.perf_counter() - started
    print(f"\nstop with {len(calls)} calls in flight took {elapsed:.3f}s")
    assert result is None, f"a stop request should make bridges.run return None, not {result!r}"
    timeouts = [
        context
        for context in reports.contexts
        if isinstance(context.get("exception"), bridges.StopTimeoutError)
    ]
    assert not timeouts, (
        "every stage of the stop sequence should finish on its own with work in flight, but "
        f"some ran out of their bounded wait: {[str(t['exception']) for t in timeouts]}"
    )
    unsettled = [call for call in calls if not call.outcome.done()]
    assert not unsettled, f"these in-flight calls never ended when the hub stopped: {unsettled}"
    not_cancelled = [
        f"{call!r} ({call.outcome.result()[0]})"
        for call in calls
        if not call.outcome.cancelled() and call.outcome.result()[0] != "cancelled"
    ]
    assert not not_cancelled, (
        f"in-flight calls should end cancelled when the hub stops, but these did not: "
        f"{not_cancelled}"
    )
    native = [call for call in calls if not call.trace.callee_cancelled]
    assert not native, (
        f"the pending primitives of in-flight calls should be cancelled natively when the hub "
        f"stops, but these never saw it: {native}"
    )
    assert not reports.contexts, f"the error sink received: {reports.describe()}"


# -- SIGTERM with requests in flight ----------------------------------------------------

SERVICE = Path(__file__).with_name("sigterm_service.py")


@pytest.mark.timeout(90)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_with_requests_in_flight_exits_0() -> None:
    env = dict(os.environ, PYTHONPATH=str(SERVICE.parent.parent))
    child = subprocess.Popen(
        [sys.executable, "-m", "contract.sigterm_service"],
        cwd=str(SERVICE.parent.parent),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("READY"), (
            f"the service should print READY once its requests are in flight, but printed "
            f"{line!r}; stderr: {child.stderr.read() if child.stderr else ''}"
        )
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    print(f"\n{line.strip()}; after SIGTERM: {out.strip()}")
    assert child.returncode == 0, (
        f"SIGTERM with requests in flight should run the stop sequence and exit 0, but the "
        f"service exited {child.returncode}; stderr:\n{err}"
    )
    assert "STOPPED" in out, f"the service should report how it stopped, but printed {out!r}"
    assert "unfinished=0" in out, (
        f"every in-flight request should have ended when the service stopped: {out!r}"
    )


def test_flavor_table_names_every_flavor_of_the_contract() -> None:
    names = {flavor.name for flavor in FLAVORS}
    assert names == {
        "asyncio",
        "twisted",
        "tornado",
        "gevent",
        "asyncore",
        "concurrent",
        "generator",
    }, f"the contract names seven flavors; the suite has {sorted(names)}"
