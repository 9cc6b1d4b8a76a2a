"""``bridges.awaitable`` and ``bridges.register`` for the primitives that need no framework.

These tests run on the project's own pytest plugin: each is an ``async def``
on a fresh hub with no framework attached.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextvars
import random
import threading
import traceback
import types
from typing import Any, Generator

import pytest

import bridges

pytestmark = pytest.mark.bridges(frameworks=None)


# -- any awaitable ---------------------------------------------------------


async def test_a_coroutine_passes_through_with_its_result() -> None:
    marker = object()

    async def produce() -> object:
        return marker

    async def main() -> object:
        return await bridges.awaitable(produce())

    assert await main() is marker


async def test_an_asyncio_future_is_returned_as_it_is() -> None:
    async def main() -> bool:
        fut = asyncio.get_running_loop().create_future()
        return bridges.awaitable(fut) is fut

    assert await main() is True


class CustomAwaitable:
    def __await__(self) -> Generator[Any, None, str]:
        yield from asyncio.sleep(0).__await__()
        return "custom"


async def test_any_object_with_await_is_accepted() -> None:
    async def main() -> str:
        return await bridges.awaitable(CustomAwaitable())

    assert await main() == "custom"


def test_something_not_awaitable_names_its_type_and_points_at_register() -> None:
    class Ticket:
        pass

    with pytest.raises(bridges.NotAwaitableError) as caught:
        bridges.awaitable(Ticket())
    message = str(caught.value)
    assert "Ticket" in message
    assert "bridges.register(Ticket, converter)" in message
    assert isinstance(caught.value, TypeError)


def test_a_coroutine_function_instead_of_a_coroutine_says_to_call_it() -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(bridges.NotAwaitableError, match="call it first"):
        bridges.awaitable(fetch)


# -- register ---------------------------------------------------------------


class Job:
    def __init__(self, value: object) -> None:
        self.value = value


class UrgentJob(Job):
    pass


async def test_a_registered_type_and_its_subclasses_are_converted() -> None:
    async def finish(job: Job) -> object:
        await asyncio.sleep(0)
        return job.value

    bridges.register(Job, finish)

    async def main() -> tuple[object, object]:
        return await bridges.awaitable(Job(1)), await bridges.awaitable(UrgentJob(2))

    assert await main() == (1, 2)


async def test_a_registration_made_after_a_failed_await_of_that_type_takes_effect() -> None:
    class Ticket:
        pass

    with pytest.raises(bridges.NotAwaitableError):
        bridges.awaitable(Ticket())

    async def stamped(_ticket: Ticket) -> str:
        return "stamped"

    bridges.register(Ticket, stamped)
    assert await bridges.awaitable(Ticket()) == "stamped"


async def test_a_class_registered_later_with_an_abc_is_converted_as_that_abc() -> None:
    class Receipt(abc.ABC):
        @abc.abstractmethod
        def total(self) -> int: ...

    class Paper:
        pass

    async def filed(_receipt: Receipt) -> str:
        return "filed"

    bridges.register(Receipt, filed)
    with pytest.raises(bridges.NotAwaitableError):
        bridges.awaitable(Paper())
    Receipt.register(Paper)
    assert await bridges.awaitable(Paper()) == "filed"


@pytest.mark.parametrize(
    ("type_", "converter", "phrase"),
    [
        ("Job", lambda job: job, "takes a class"),
        (Job, "not callable", "needs a callable converter"),
    ],
)
def test_register_rejects_bad_arguments_with_what_it_needs(
    type_: Any, converter: Any, phrase: str
) -> None:
    with pytest.raises(bridges.NotAwaitableError, match=phrase):
        bridges.register(type_, converter)


# -- concurrent.futures ----------------------------------------------------


async def test_a_concurrent_future_gives_the_same_result_object() -> None:
    marker = object()

    async def main(pool: concurrent.futures.Executor) -> object:
        return await bridges.awaitable(pool.submit(lambda: marker))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert await main(pool) is marker


async def test_a_concurrent_future_gives_the_same_exception_with_its_traceback() -> None:
    raised: list[BaseException] = []

    def fail_in_thread() -> None:
        error = ZeroDivisionError("in the pool")
        raised.append(error)
        raise error

    async def main(pool: concurrent.futures.Executor) -> BaseException:
        try:
            await bridges.awaitable(pool.submit(fail_in_thread))
        except ZeroDivisionError as error:
            return error
        raise AssertionError("no exception")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        caught = await main(pool)
    assert caught is raised[0]
    frames = [frame.name for frame in traceback.extract_tb(caught.__traceback__)]
    assert "fail_in_thread" in frames


async def test_cancelling_the_awaiting_task_cancels_the_concurrent_future() -> None:
    async def main() -> tuple[bool, bool]:
        source: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def wait_for_source() -> None:
            await bridges.awaitable(source)

        waiter = asyncio.ensure_future(wait_for_source())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.sleep(0)  # asyncio delivers the cancel to the source on the next pass
        return source.cancelled(), waiter.cancelled()

    assert await main() == (True, True)


async def test_a_concurrent_future_cancelled_by_its_owner_cancels_the_awaiting_task() -> None:
    async def main() -> bool:
        source: concurrent.futures.Future[None] = concurrent.futures.Future()
        waiter = asyncio.ensure_future(bridges.awaitable(source))
        await asyncio.sleep(0)
        threading.Thread(target=source.cancel).start()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return waiter.cancelled()

    assert await main() is True


async def test_a_concurrent_future_already_done_gives_its_result() -> None:
    source: concurrent.futures.Future[str] = concurrent.futures.Future()
    source.set_result("early")
    assert await asyncio.wait_for(bridges.awaitable(source), 5) == "early"


@pytest.mark.parametrize(
    ("raised", "seen"),
    [
        (concurrent.futures.CancelledError("c"), asyncio.CancelledError),
        (concurrent.futures.InvalidStateError("i"), asyncio.InvalidStateError),
        (concurrent.futures.TimeoutError("t"), asyncio.TimeoutError),
    ],
    ids=["CancelledError", "InvalidStateError", "TimeoutError"],
)
async def test_concurrent_futures_own_exceptions_become_asyncios_as_wrap_future_makes_them(
    raised: BaseException, seen: type[BaseException]
) -> None:
    source: concurrent.futures.Future[None] = concurrent.futures.Future()
    threading.Thread(target=source.set_exception, args=(raised,)).start()
    with pytest.raises(seen) as caught:
        await asyncio.wait_for(bridges.awaitable(source), 5)
    assert caught.value.args == raised.args


async def test_a_concurrent_future_failing_with_stop_iteration_fails_the_await() -> None:
    # asyncio futures refuse StopIteration; before Python 3.13 wrap_future's
    # await then never ended.
    source: concurrent.futures.Future[None] = concurrent.futures.Future()
    refused = StopIteration("from the pool")
    threading.Thread(target=source.set_exception, args=(refused,)).start()
    with pytest.raises(RuntimeError, match="StopIteration") as caught:
        await asyncio.wait_for(bridges.awaitable(source), 5)
    assert caught.value.__cause__ is refused


async def test_a_concurrent_future_resolved_after_its_loop_closed_is_dropped_quietly() -> None:
    source: concurrent.futures.Future[int] = concurrent.futures.Future()

    async def convert() -> asyncio.Future[int]:
        return bridges.awaitable(source)  # type: ignore[return-value]

    def on_a_loop_of_its_own() -> asyncio.Future[int]:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(convert())
        finally:
            loop.close()

    waiter = await asyncio.to_thread(on_a_loop_of_its_own)
    source.set_result(1)  # no loop to deliver to: nothing raised here
    assert not waiter.done()


async def test_context_set_by_the_caller_is_seen_by_the_callee() -> None:
    user: contextvars.ContextVar[str] = contextvars.ContextVar("user")

    async def callee() -> str:
        return user.get()

    def legacy() -> Generator[Any, Any, str]:
        yield
        return user.get()

    async def main() -> tuple[str, str]:
        user.set("alice")
        return await bridges.awaitable(callee()), await bridges.awaitable(legacy())

    assert await main() == ("alice", "alice")


# -- Tulip-era generator coroutines ----------------------------------------


async def test_a_generator_coroutine_yielding_from_a_future_gets_its_result() -> None:
    def legacy(fut: asyncio.Future[int]) -> Generator[Any, Any, int]:
        value = yield from fut
        return value * 2

    async def main() -> int:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, fut.set_result, 21)
        return await bridges.awaitable(legacy(fut))

    assert await main() == 42


async def test_nested_generator_coroutines_run_like_nested_coroutines() -> None:
    def inner(delay: float) -> Generator[Any, Any, str]:
        yield from asyncio.ensure_future(asyncio.sleep(delay))
        return "inner"

    def outer() -> Generator[Any, Any, str]:
        first = yield from inner(0)
        second = yield from inner(0.01)
        return first + "+" + second

    async def main() -> str:
        return await bridges.awaitable(outer())

    assert await main() == "inner+inner"


async def test_a_generator_coroutine_may_yield_anything_awaitable_accepts() -> None:
    def legacy(pool: concurrent.futures.Executor) -> Generator[Any, Any, int]:
        value = yield pool.submit(lambda: 5)  # a concurrent future, yielded bare
        return value

    async def main(pool: concurrent.futures.Executor) -> int:
        return await bridges.awaitable(legacy(pool))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert await main(pool) == 5


async def test_a_bare_yield_of_an_asyncio_future_sends_its_result_back() -> None:
    def legacy(fut: asyncio.Future[str]) -> Generator[Any, Any, str]:
        value = yield fut  # Tulip accepted `yield fut` as well as `yield from fut`
        return value

    async def main() -> str:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, "bare")
        return await bridges.awaitable(legacy(fut))

    assert await main() == "bare"


async def test_a_types_coroutine_generator_is_awaited_as_it_is() -> None:
    @types.coroutine
    def already_awaitable(fut: asyncio.Future[str]) -> Generator[Any, Any, str]:
        value = yield from fut
        return value

    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(fut.set_result, "native")
    gen = already_awaitable(fut)
    converted = bridges.awaitable(gen)
    assert converted is gen
    assert await converted == "native"


async def test_an_exception_is_thrown_into_the_generator_where_it_waited() -> None:
    def legacy(fut: asyncio.Future[None]) -> Generator[Any, Any, str]:
        try:
            yield from fut
        except KeyError as error:
            return f"caught {error.args[0]}"
        return "not caught"

    async def main() -> str:
        fut = asyncio.get_running_loop().create_future()
        fut.set_exception(KeyError("k"))
        return await bridges.awaitable(legacy(fut))

    assert await main() == "caught k"


async def test_an_exception_from_the_generator_is_the_same_object() -> None:
    raised: list[BaseException] = []

    def legacy() -> Generator[Any, Any, None]:
        yield
        error = ValueError("legacy failure")
        raised.append(error)
        raise error

    async def main() -> BaseException:
        try:
            await bridges.awaitable(legacy())
        except ValueError as error:
            return error
        raise AssertionError("no exception")

    caught = await main()
    assert caught is raised[0]
    assert "legacy" in [frame.name for frame in traceback.extract_tb(caught.__traceback__)]


async def test_cancelling_the_task_throws_cancelled_error_into_the_generator() -> None:
    seen: list[str] = []

    def legacy() -> Generator[Any, Any, None]:
        try:
            yield from asyncio.ensure_future(asyncio.sleep(3600))
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    async def main() -> bool:
        task = asyncio.ensure_future(bridges.awaitable(legacy()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert await main() is True
    assert seen == ["cancelled", "finally"]


async def test_a_bare_yield_is_one_pass_of_the_loop() -> None:
    order: list[str] = []

    def legacy() -> Generator[Any, Any, None]:
        order.append("before yield")
        yield
        order.append("after yield")

    async def other() -> None:
        order.append("other task")

    async def main() -> None:
        concurrent_task = asyncio.ensure_future(other())
        await bridges.awaitable(legacy())
        await concurrent_task

    await main()
    assert order == ["before yield", "other task", "after yield"]


# -- load ------------------------------------------------------------------


@pytest.mark.bridges(frameworks=None, timeout=60)
async def test_ten_thousand_concurrent_awaits_of_mixed_primitives_all_complete_correctly() -> None:
    count = 10_000

    def legacy(fut: asyncio.Future[int]) -> Generator[Any, Any, int]:
        value = yield from fut
        return value

    async def coroutine(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> tuple[list[int], int, int]:
        loop = asyncio.get_running_loop()
        hub = bridges.current_hub()
        already_running = asyncio.all_tasks()
        rng = random.Random(7)
        primitives: list[Any] = []
        thread_futures: list[tuple[concurrent.futures.Future[int], int]] = []
        for i in range(count):
            kind = i % 4
            if kind == 0:
                fut = loop.create_future()
                loop.call_later(rng.random() / 100, fut.set_result, i)
                primitives.append(fut)
            elif kind == 1:
                cfut: concurrent.futures.Future[int] = concurrent.futures.Future()
                thread_futures.append((cfut, i))
                primitives.append(cfut)
            elif kind == 2:
                fut = loop.create_future()
                loop.call_soon(fut.set_result, i)
                primitives.append(legacy(fut))
            else:
                primitives.append(hub.spawn(coroutine(i)))

        def resolve_from_thread() -> None:
            for cfut, value in thread_futures:
                cfut.set_result(value)

        waiters = [asyncio.ensure_future(bridges.awaitable(p)) for p in primitives]
        threading.Thread(target=resolve_from_thread).start()
        results = await asyncio.wait_for(asyncio.gather(*waiters), 30)
        left = [t for t in asyncio.all_tasks() - already_running if not t.done()]
        return results, len(left), len(hub.pending_tasks())

    results, tasks_left, legacy_left = await main()
    assert results == list(range(count))
    assert tasks_left == 0
    assert legacy_left == 0
