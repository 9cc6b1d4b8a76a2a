"""``@gen.coroutine`` on the hub: yield anything the hub knows, cancellation, and the
contract table for Tornado <-> asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import traceback
from typing import Any, Generator

import pytest
import tornado
from _tornado_helpers import LOOPS, run_tornado
from tornado import gen
from tornado.concurrent import Future

import bridges
from bridges import tornado as btn

pytestmark = pytest.mark.timeout(60)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


# -- yield anything the hub knows ----------------------------------------------------


def test_a_gen_coroutine_yields_a_concurrent_future_and_gets_its_result() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)

    @gen.coroutine
    def legacy() -> Any:
        value = yield pool.submit(lambda: "from a thread")
        return value

    try:
        assert run_tornado(legacy) == "from a thread"
    finally:
        pool.shutdown()


def test_a_gen_coroutine_yields_a_tulip_era_generator_coroutine() -> None:
    def tulip() -> Generator[Any, Any, str]:
        yield from asyncio.ensure_future(asyncio.sleep(0))
        return "tulip"

    @gen.coroutine
    def legacy() -> Any:
        value = yield tulip()
        return value

    assert run_tornado(legacy) == "tulip"


def test_a_yield_list_mixing_every_flavour_without_a_framework_gives_results_in_order() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def tulip() -> Generator[Any, Any, str]:
        yield
        return "tulip"

    async def native() -> str:
        await asyncio.sleep(0)
        return "native"

    @gen.coroutine
    def legacy() -> Any:
        values = yield [pool.submit(lambda: "thread"), tulip(), native(), gen.sleep(0)]
        keyed = yield {"a": tulip(), "b": pool.submit(lambda: "b")}
        return values, keyed

    try:
        assert run_tornado(legacy) == (
            ["thread", "tulip", "native", None],
            {"a": "tulip", "b": "b"},
        )
    finally:
        pool.shutdown()


class Ticket:
    """A user's own primitive, taught to the hub with bridges.register after attach."""

    def __init__(self, value: str) -> None:
        self.value = value


def test_a_type_registered_with_bridges_later_can_be_yielded_by_a_gen_coroutine() -> None:
    async def redeem(ticket: Ticket) -> str:
        await asyncio.sleep(0)
        return ticket.value

    @gen.coroutine
    def legacy() -> Any:
        bridges.register(Ticket, redeem)
        value = yield Ticket("registered late")
        both = yield [Ticket("a"), Ticket("b")]
        return value, both

    assert run_tornado(legacy) == ("registered late", ["a", "b"])


class Voucher:
    """A user's primitive yielded before and after registrations of its converter."""


def test_each_yield_uses_the_converter_registered_at_that_time() -> None:
    async def first(_voucher: Voucher) -> str:
        return "first"

    async def second(_voucher: Voucher) -> str:
        return "second"

    @gen.coroutine
    def legacy() -> Any:
        try:
            yield Voucher()
        except gen.BadYieldError:
            refused = True
        bridges.register(Voucher, first)
        before = yield Voucher()
        bridges.register(Voucher, second)
        after = yield Voucher()
        return refused, before, after

    assert run_tornado(legacy) == (True, "first", "second")


def test_yielding_an_unknown_object_still_raises_tornados_bad_yield_error() -> None:
    @gen.coroutine
    def legacy() -> Any:
        yield object()

    with pytest.raises(gen.BadYieldError, match="yielded unknown object"):
        run_tornado(legacy)


class Receipt:
    """A type whose converter Tornado code registered with convert_yielded directly."""


def test_guard_a_later_foreign_convert_yielded_registration_does_not_bypass_the_hub() -> None:
    # The last singledispatch registration wins: a library registering its own
    # converter for a type the hub knows (as tornado.platform.twisted does for
    # Deferred) must not take the hub's cancellation handling away.
    seen: list[str] = []

    async def via_hub(_receipt: Receipt) -> str:
        seen.append("hub")
        return "hub"

    def via_foreign(_receipt: Receipt) -> Future[str]:
        seen.append("foreign")
        done: Future[str] = Future()
        done.set_result("foreign")
        return done

    bridges.register(Receipt, via_hub)
    gen.convert_yielded.register(Receipt, via_foreign)

    @gen.coroutine
    def legacy() -> Any:
        value = yield Receipt()
        return value

    assert run_tornado(legacy) == "hub"
    assert seen == ["hub"]


def test_guard_types_the_hub_does_not_know_keep_their_foreign_convert_yielded_registration() -> (
    None
):
    class Voucher:
        pass

    def via_foreign(_voucher: Voucher) -> Future[str]:
        done: Future[str] = Future()
        done.set_result("foreign")
        return done

    gen.convert_yielded.register(Voucher, via_foreign)

    @gen.coroutine
    def legacy() -> Any:
        value = yield Voucher()
        return value

    assert run_tornado(legacy) == "foreign"


# -- tornado issue 3537 and other cancellation ---------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("loop_factory", LOOPS)
def test_issue_3537_a_gen_coroutine_whose_yielded_future_is_cancelled_resolves_as_cancelled(
    loop_factory: str,
) -> None:
    async def main() -> bool:
        child = asyncio.get_running_loop().create_future()

        @gen.coroutine
        def legacy() -> Any:
            yield child

        outer = legacy()
        child.cancel()
        await asyncio.wait({outer}, timeout=5)
        return outer.cancelled()

    assert run_tornado(main, loop_factory=loop_factory) is True


@pytest.mark.timeout(20)
def test_issue_3537_a_gen_coroutine_can_catch_the_cancellation_of_what_it_yielded() -> None:
    async def main() -> Any:
        child = asyncio.ensure_future(asyncio.sleep(30))

        @gen.coroutine
        def legacy() -> Any:
            try:
                yield child
            except asyncio.CancelledError:
                value = yield gen.sleep(0)  # keeps running after the cancellation
                return ("recovered", value)
            return "not cancelled"

        outer = legacy()
        await asyncio.sleep(0)
        child.cancel()
        return await asyncio.wait_for(outer, 5)

    assert run_tornado(main) == ("recovered", None)


@pytest.mark.timeout(20)
def test_issue_3537_an_already_cancelled_future_yielded_first_resolves_as_cancelled() -> None:
    async def main() -> bool:
        child = asyncio.get_running_loop().create_future()
        child.cancel()

        @gen.coroutine
        def legacy() -> Any:
            yield gen.moment
            yield child

        outer = legacy()
        await asyncio.wait({outer}, timeout=5)
        return outer.cancelled()

    assert run_tornado(main) is True


def test_the_3537_fix_is_installed_only_on_tornado_versions_that_need_it() -> None:
    from bridges.tornado import _compat

    async def main() -> bool:
        return gen.Runner.run is _compat._run_resolving_cancellation

    assert run_tornado(main) == (tornado.version_info < (6, 6))
    assert gen.Runner.run is _compat._tornados_run


def test_limit_gen_with_timeout_does_not_cancel_the_future_it_gave_up_on() -> None:
    async def main() -> bool:
        import datetime

        child = asyncio.get_running_loop().create_future()
        with pytest.raises(gen.TimeoutError):
            await gen.with_timeout(datetime.timedelta(milliseconds=5), child)
        still_pending = not child.done()
        child.cancel()
        return still_pending

    assert run_tornado(main) is True


def test_limit_gen_multi_does_not_cancel_its_children_when_it_is_cancelled() -> None:
    async def main() -> bool:
        child = asyncio.get_running_loop().create_future()
        combined = gen.multi([child])
        combined.cancel()
        await asyncio.sleep(0)
        still_pending = not child.done()
        child.cancel()
        return still_pending

    assert run_tornado(main) is True


# -- the contract table: Tornado <-> asyncio -----------------------------------------


def test_contract_result_the_same_object_crosses_both_ways() -> None:
    payload = object()

    async def native() -> object:
        await asyncio.sleep(0)
        return payload

    @gen.coroutine
    def legacy() -> Any:
        value = yield native()
        return value

    async def main() -> object:
        return await legacy()

    assert run_tornado(main) is payload


def test_contract_exception_asyncio_sees_the_gen_coroutines_exception_object_and_frames() -> None:
    boom = LookupError("tornado side")

    @gen.coroutine
    def failing_in_tornado() -> Any:
        yield gen.moment
        raise boom

    async def main() -> BaseException:
        try:
            await failing_in_tornado()
        except LookupError as exc:
            return exc
        raise AssertionError("no exception")

    caught = run_tornado(main)
    assert caught is boom
    assert "failing_in_tornado" in [f.name for f in traceback.extract_tb(caught.__traceback__)]


def test_contract_exception_a_gen_coroutine_sees_the_asyncio_exception_object_and_frames() -> None:
    boom = LookupError("asyncio side")

    async def failing_in_asyncio() -> None:
        await asyncio.sleep(0)
        raise boom

    @gen.coroutine
    def legacy() -> Any:
        try:
            yield failing_in_asyncio()
        except LookupError as exc:
            return exc
        return None

    caught = run_tornado(legacy)
    assert caught is boom
    assert "failing_in_asyncio" in [f.name for f in traceback.extract_tb(caught.__traceback__)]


def test_contract_cancel_from_asyncio_cancels_the_tornado_future_and_keeps_its_own_error() -> None:
    async def main() -> tuple[bool, tuple[Any, ...]]:
        tornado_future: Future[None] = Future()
        seen: list[tuple[Any, ...]] = []

        async def waiter() -> None:
            try:
                await tornado_future
            except asyncio.CancelledError as exc:
                seen.append(exc.args)
                raise

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        task.cancel("cancelled by the asyncio side")
        await asyncio.wait({task})
        return tornado_future.cancelled(), seen[0]

    cancelled, args = run_tornado(main)
    assert cancelled
    assert args == ("cancelled by the asyncio side",)


def test_contract_cancel_from_tornado_a_third_party_cancel_reaches_the_awaiting_task() -> None:
    async def main() -> str:
        tornado_future: Future[None] = Future()
        task = asyncio.ensure_future(tornado_future)
        btn.ioloop().add_callback(tornado_future.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run_tornado(main) == "cancelled"


@pytest.mark.xfail(
    tornado.version_info < (6, 3),
    reason="Tornado 6.2 converts a gen.coroutine's first yield outside the coroutine's "
    "context (fixed in 6.3), so what it yields first starts in the caller's context",
    strict=True,
)
def test_contract_context_a_gen_coroutine_sees_the_callers_contextvars_and_passes_them_on() -> None:
    async def native() -> str:
        await asyncio.sleep(0)
        return request_id.get()

    @gen.coroutine
    def legacy() -> Any:
        inside = request_id.get()
        request_id.set("set in tornado")
        passed_on = yield native()
        return inside, passed_on

    async def main() -> Any:
        request_id.set("set in asyncio")
        return await legacy()

    assert run_tornado(main) == ("set in asyncio", "set in tornado")


def test_contract_thread_add_callback_from_another_thread_runs_on_the_hubs_thread() -> None:
    async def main() -> bool:
        ioloop = btn.ioloop()
        ran_on: Future[int] = Future()
        hub_thread = threading.get_ident()
        caller = threading.Thread(
            target=ioloop.add_callback, args=(lambda: ran_on.set_result(threading.get_ident()),)
        )
        caller.start()
        ran_on_hub_thread = await ran_on == hub_thread
        caller.join()
        return ran_on_hub_thread

    assert run_tornado(main) is True


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_contract_nothing_lost_thousands_of_crossings_each_end_exactly_once(
    loop_factory: str,
) -> None:
    count = 3000

    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()

        @gen.coroutine
        def legacy(i: int) -> Any:
            fut = loop.create_future()
            if i % 3 == 0:
                loop.call_soon(fut.set_result, i)
            elif i % 3 == 1:
                loop.call_soon(fut.set_exception, ValueError(i))
            else:
                loop.call_soon(fut.cancel)
            try:
                value = yield fut
            except ValueError as exc:
                return -exc.args[0]
            return value

        outcomes = await asyncio.gather(*(legacy(i) for i in range(count)), return_exceptions=True)
        results = sum(1 for o in outcomes if isinstance(o, int) and o >= 0 and o % 3 == 0)
        errors = sum(1 for o in outcomes if isinstance(o, int) and o < 0)
        cancels = sum(1 for o in outcomes if isinstance(o, asyncio.CancelledError))
        return results, errors, cancels

    results, errors, cancels = run_tornado(main, loop_factory=loop_factory)
    assert (results, errors, cancels) == (1000, 1000, 1000)


def test_btn_future_turns_a_mixed_list_into_one_tornado_future_of_the_hubs_loop() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def main() -> tuple[bool, Any]:
        combined = btn.future([pool.submit(lambda: 1), asyncio.sleep(0, 2)])
        on_hub_loop = combined.get_loop() is asyncio.get_running_loop()
        return on_hub_loop, await combined

    try:
        assert run_tornado(main) == (True, [1, 2])
    finally:
        pool.shutdown()


@pytest.mark.timeout(20)
def test_cancelling_a_gen_coroutines_future_cancels_what_it_yields_and_stops_the_generator() -> (
    None
):
    async def main() -> tuple[bool, list[str]]:
        child = asyncio.get_running_loop().create_future()
        seen: list[str] = []

        @gen.coroutine
        def legacy() -> Any:
            try:
                yield child
            except asyncio.CancelledError:
                seen.append("generator saw CancelledError")
                raise
            seen.append("kept running")

        outer = legacy()
        await asyncio.sleep(0)
        outer.cancel()
        await asyncio.wait({child}, timeout=5)
        await asyncio.sleep(0)
        return child.cancelled(), seen

    assert run_tornado(main) == (True, ["generator saw CancelledError"])


@pytest.mark.timeout(20)
def test_cancelling_the_task_awaiting_nested_gen_coroutines_reaches_the_innermost_future() -> None:
    async def main() -> bool:
        innermost = asyncio.get_running_loop().create_future()

        @gen.coroutine
        def inner() -> Any:
            yield innermost

        @gen.coroutine
        def outer() -> Any:
            yield inner()

        task = asyncio.ensure_future(outer())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({innermost}, timeout=5)
        return innermost.cancelled()

    assert run_tornado(main) is True


@pytest.mark.timeout(20)
def test_a_generator_that_handles_the_cancellation_may_finish_its_cleanup_yields() -> None:
    async def main() -> list[str]:
        child = asyncio.get_running_loop().create_future()
        cleanup = asyncio.get_running_loop().create_future()
        seen: list[str] = []

        @gen.coroutine
        def legacy() -> Any:
            try:
                yield child
            except asyncio.CancelledError:
                yield gen.sleep(0)
                seen.append("cleaned up")
                cleanup.set_result(None)

        outer = legacy()
        await asyncio.sleep(0)
        outer.cancel()
        await asyncio.wait_for(cleanup, 5)
        return seen

    assert run_tornado(main) == ["cleaned up"]


@pytest.mark.timeout(20)
def test_an_anyio_cancel_scope_around_a_gen_coroutine_cancels_what_it_yields() -> None:
    anyio = pytest.importorskip("anyio")

    async def main() -> tuple[bool, bool]:
        child = asyncio.get_running_loop().create_future()

        @gen.coroutine
        def legacy() -> Any:
            yield child

        with anyio.move_on_after(0.01) as scope:
            await legacy()
        await asyncio.wait({child}, timeout=5)
        return scope.cancelled_caught, child.cancelled()

    assert run_tornado(main) == (True, True)
