"""AnyIO on the hub: task groups, cancel scopes, threads and anyio.run, over every flavor.

AnyIO's asyncio backend runs unchanged on the hub.  Its cancel scopes are
level-triggered: they cancel the task again on every loop pass until it
leaves the scope, and they recognise their own cancellation by the original
``CancelledError``.  A bridge that swallowed, replaced or outlived that
cancellation would make ``move_on_after`` hang or leak a ``CancelledError``;
the native primitive must see the cancellation (a Deferred's canceller runs,
a greenlet is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest

import bridges

from .flavors import BY_NAME, FLAVORS, Flavor, Trace
from .harness import (
    Marker,
    Reports,
    available_flavors,
    eventually,
    frameworks_of,
    run_on_hub,
    skip_unless_available,
)

FLAVOR_IDS = [flavor.name for flavor in FLAVORS]


@pytest.mark.timeout(60)
def test_a_task_group_holds_primitives_of_every_flavor_and_gets_each_result() -> None:
    flavors = available_flavors()

    async def scenario(reports: Reports) -> None:
        results: dict[str, object] = {}
        expected = {flavor.name: Marker(flavor.name) for flavor in flavors}

        async def await_one(flavor: Flavor) -> None:
            trace = Trace()
            results[flavor.name] = await bridges.awaitable(
                flavor.resolving(expected[flavor.name], trace)
            )

        async with anyio.create_task_group() as group:
            for flavor in flavors:
                group.start_soon(await_one, flavor)
        wrong = [name for name in expected if results.get(name) is not expected[name]]
        assert not wrong, (
            f"a task group awaiting a primitive of every flavor should get each one's own "
            f"result, but these differ: {wrong}"
        )

    run_on_hub(scenario, frameworks_of(*flavors))


@pytest.mark.timeout(60)
def test_a_failing_primitive_cancels_its_task_group_siblings_natively() -> None:
    flavors = available_flavors()

    async def scenario(reports: Reports) -> None:
        traces = {flavor.name: Trace() for flavor in flavors}
        boom = RuntimeError("one member of the task group failed")

        async def wait_forever(flavor: Flavor) -> None:
            await bridges.awaitable(flavor.pending(traces[flavor.name]))

        async def fail_once_all_wait() -> None:
            await eventually(lambda: all(trace.started for trace in traces.values()))
            raise boom

        async def run_group() -> None:
            async with anyio.create_task_group() as group:
                for flavor in flavors:
                    group.start_soon(wait_forever, flavor)
                group.start_soon(fail_once_all_wait)

        with pytest.raises(BaseException) as caught:
            await run_group()
        leaves = _leaves(caught.value)
        assert leaves == [boom], (
            f"the task group should raise only the failure, not the cancellations of its "
            f"siblings; it raised {leaves!r}"
        )
        assert await eventually(lambda: all(t.callee_cancelled for t in traces.values())), (
            "when a task group member fails, the primitives its siblings await should be "
            "cancelled natively, but these never saw it: "
            f"{[name for name, t in traces.items() if not t.callee_cancelled]}"
        )

    run_on_hub(scenario, frameworks_of(*flavors))


def _leaves(exc: BaseException) -> list[BaseException]:
    nested = getattr(exc, "exceptions", None)
    if nested is None:
        return [exc]
    return [leaf for inner in nested for leaf in _leaves(inner)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("flavor", FLAVORS, ids=FLAVOR_IDS)
@pytest.mark.parametrize("scope", ["move_on_after", "fail_after", "CancelScope.cancel"])
def test_a_cancel_scope_cancels_a_bridged_primitive_natively(flavor: Flavor, scope: str) -> None:
    skip_unless_available(flavor)

    async def scenario(reports: Reports) -> None:
        trace = Trace()
        outcome = "nothing"
        if scope == "move_on_after":
            with anyio.move_on_after(0.05) as cancel_scope:
                await bridges.awaitable(flavor.pending(trace))
            outcome = "moved on" if cancel_scope.cancelled_caught else "not caught"
        elif scope == "fail_after":
            try:
                with anyio.fail_after(0.05):
                    await bridges.awaitable(flavor.pending(trace))
            except TimeoutError:
                outcome = "timed out"
        else:
            with anyio.CancelScope() as cancel_scope:

                def cancel_when_waiting() -> None:
                    if trace.started:
                        cancel_scope.cancel()
                    else:
                        asyncio.get_running_loop().call_soon(cancel_when_waiting)

                asyncio.get_running_loop().call_soon(cancel_when_waiting)
                await bridges.awaitable(flavor.pending(trace))
            outcome = "moved on" if cancel_scope.cancelled_caught else "not caught"
        assert outcome == ("timed out" if scope == "fail_after" else "moved on"), (
            f"AnyIO's {scope} around an awaited {flavor.name} primitive should end the scope "
            f"by its own cancellation, but the outcome was: {outcome}"
        )
        assert await eventually(lambda: trace.callee_cancelled), (
            f"AnyIO's {scope} should cancel the {flavor.name} primitive natively, but it "
            "never saw its cancellation"
        )
        # The task is not cancelled any more: level-triggered re-cancellation stopped.
        await asyncio.sleep(0.01)
        assert not reports.contexts, f"the error sink received: {reports.describe()}"

    run_on_hub(scenario, list(flavor.frameworks))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("flavor", FLAVORS, ids=FLAVOR_IDS)
def test_an_outer_scope_keeps_cancelling_until_the_bridged_wait_is_left(flavor: Flavor) -> None:
    """Level-triggered: a primitive that swallows the first cancellation is cancelled again."""
    skip_unless_available(flavor)

    async def scenario(reports: Reports) -> None:
        first = Trace()
        second = Trace()
        with anyio.move_on_after(0.05) as cancel_scope:
            # The scope's cancellation, swallowed on purpose.
            with contextlib.suppress(BaseException):
                await bridges.awaitable(flavor.pending(first))
            # Still inside the cancelled scope: AnyIO cancels the next wait too.
            await bridges.awaitable(flavor.pending(second))
        assert cancel_scope.cancelled_caught, (
            f"a cancelled AnyIO scope should also cancel a second {flavor.name} wait made "
            "after the first cancellation was swallowed, and then catch its cancellation"
        )
        assert await eventually(lambda: first.callee_cancelled and second.callee_cancelled), (
            f"both {flavor.name} primitives should be cancelled natively (first: "
            f"{first.callee_cancelled}, second: {second.callee_cancelled})"
        )

    run_on_hub(scenario, list(flavor.frameworks))


# -- threads ------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_anyio_from_thread_works_from_twisteds_thread_pool() -> None:
    skip_unless_available(BY_NAME["twisted"])

    async def scenario(reports: Reports) -> None:
        from twisted.internet import task, threads

        from bridges import twisted as bt

        hub_thread = threading.get_ident()
        token = anyio.lowlevel.current_token()
        value = Marker("from Twisted's pool")
        seen: dict[str, int] = {}

        async def on_the_hub() -> object:
            seen["hub"] = threading.get_ident()
            return await bridges.awaitable(task.deferLater(bt.get_reactor(), 0, lambda: value))

        def in_twisted_pool() -> object:
            seen["pool"] = threading.get_ident()
            return anyio.from_thread.run(on_the_hub, token=token)

        got = await bridges.awaitable(threads.deferToThread(in_twisted_pool))
        assert got is value, f"anyio.from_thread.run from Twisted's pool returned {got!r}"
        assert seen["pool"] != hub_thread, "deferToThread should run in a pool thread"
        assert seen["hub"] == hub_thread, (
            "the coroutine that anyio.from_thread.run started from Twisted's pool should run "
            f"on the hub's thread {hub_thread}, not {seen['hub']}"
        )

    run_on_hub(scenario, ["twisted"])


@pytest.mark.timeout(30)
def test_anyio_from_thread_works_from_gevents_thread_pool() -> None:
    skip_unless_available(BY_NAME["gevent"])

    async def scenario(reports: Reports) -> None:
        import gevent

        from bridges import gevent as bg

        hub_thread = threading.get_ident()
        token = anyio.lowlevel.current_token()
        value = Marker("from gevent's pool")
        seen: dict[str, int] = {}

        def in_greenlet() -> object:
            gevent.sleep(0)
            return value

        async def on_the_hub() -> object:
            seen["hub"] = threading.get_ident()
            return await bridges.awaitable(gevent.spawn(in_greenlet))

        def in_gevent_pool() -> object:
            seen["pool"] = threading.get_ident()
            return anyio.from_thread.run(on_the_hub, token=token)

        result = bg.get_hub().threadpool.spawn(in_gevent_pool)
        got = await bridges.awaitable(result)
        assert got is value, f"anyio.from_thread.run from gevent's pool returned {got!r}"
        assert seen["pool"] != hub_thread, "gevent's threadpool should run in another thread"
        assert seen["hub"] == hub_thread, (
            "the coroutine that anyio.from_thread.run started from gevent's pool should run "
            f"on the hub's thread {hub_thread}, not {seen['hub']}"
        )

    run_on_hub(scenario, ["gevent"])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("caller", ["twisted", "gevent", "tornado"])
def test_anyio_to_thread_runs_from_legacy_code_in_a_worker_with_its_context(caller: str) -> None:
    flavor = BY_NAME[caller]
    skip_unless_available(flavor)

    async def scenario(reports: Reports) -> None:
        hub_thread = threading.get_ident()
        value = Marker("to_thread")
        trace = Trace(ctx_value=value)
        seen: dict[str, Any] = {}

        def in_worker() -> object:
            from .flavors import CTX

            seen["thread"] = threading.get_ident()
            seen["ctx"] = CTX.get()
            return value

        handle = flavor.call(trace, lambda: anyio.to_thread.run_sync(in_worker))
        got = await bridges.awaitable(flavor.outcome(handle))
        assert got is value, f"anyio.to_thread.run_sync called from {caller} code returned {got!r}"
        assert seen["thread"] != hub_thread, "anyio.to_thread should run in a worker thread"
        assert seen["ctx"] is value, (
            f"anyio.to_thread.run_sync called from {caller} code should carry the caller's "
            f"contextvars into the worker, but the worker saw {seen['ctx']!r}"
        )

    run_on_hub(scenario, list(flavor.frameworks))


# -- anyio.run using the hub ----------------------------------------------------------

LOOP_FACTORIES = ["asyncio", "uvloop"]


def _loop_factory(name: str) -> Any:
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop
    return asyncio.new_event_loop


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop_name", LOOP_FACTORIES)
def test_anyio_run_with_a_loop_factory_hosts_a_hub_with_every_framework(loop_name: str) -> None:
    flavors = available_flavors()
    factory = _loop_factory(loop_name)

    async def main() -> dict[str, bool]:
        async with bridges.Hub(frameworks=frameworks_of(*flavors)):
            checked: dict[str, bool] = {}
            for caller in flavors:
                for callee in flavors:
                    value = Marker(f"{caller.name}->{callee.name}")
                    trace = Trace()

                    def make(callee: Flavor = callee, value: Any = value, t: Trace = trace) -> Any:
                        return callee.resolving(value, t)

                    with anyio.fail_after(10):
                        got = await bridges.awaitable(caller.outcome(caller.call(trace, make)))
                    checked[f"{caller.name}->{callee.name}"] = got is value
            return checked

    checked = anyio.run(main, backend="asyncio", backend_options={"loop_factory": factory})
    wrong = [pair for pair, ok in checked.items() if not ok]
    assert checked, "anyio.run with a hub inside checked no pair"
    assert not wrong, (
        f"under anyio.run on {loop_name} with a hub entered inside, every pair should pass "
        f"results through unchanged; these did not: {wrong}"
    )
