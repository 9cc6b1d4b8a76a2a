"""``bridges.run``: results, errors, loops, repeated runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading

import pytest

import bridges


def test_run_returns_the_result_of_main_called_with_its_arguments() -> None:
    async def main(a: int, b: int) -> int:
        return a + b

    assert bridges.run(main, 2, 3, frameworks=None) == 5


def test_run_accepts_a_coroutine_object() -> None:
    async def main() -> str:
        return "done"

    assert bridges.run(main(), frameworks=None) == "done"


def test_run_accepts_anything_awaitable_accepts_as_main() -> None:
    def legacy_main():  # a Tulip-era generator coroutine
        value = yield from asyncio.ensure_future(asyncio.sleep(0, "legacy"))
        return value

    assert bridges.run(legacy_main, frameworks=None) == "legacy"


def test_run_raises_the_same_exception_object_main_raised() -> None:
    raised = []

    async def main() -> None:
        error = LookupError("from main")
        raised.append(error)
        raise error

    with pytest.raises(LookupError) as caught:
        bridges.run(main, frameworks=None)
    assert caught.value is raised[0]


def test_run_can_be_called_again_and_again_in_one_process() -> None:
    loops = set()

    async def main(i: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return i

    results = [
        bridges.run(main, i, frameworks=None, loop_factory="uvloop" if i % 2 else None)
        for i in range(20)
    ]
    assert results == list(range(20))
    assert asyncio.get_event_loop_policy()._local._loop is None  # type: ignore[attr-defined]


def test_run_from_inside_a_running_loop_says_to_use_hub() -> None:
    async def outer() -> None:
        with pytest.raises(bridges.HubStateError, match=r"async with bridges\.Hub\(\)"):
            bridges.run(asyncio.sleep, 0, frameworks=None)

    asyncio.run(outer())


def test_run_with_uvloop_runs_main_on_a_uvloop_loop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> type:
        return type(asyncio.get_running_loop())

    assert bridges.run(main, frameworks=None, loop_factory="uvloop") is uvloop.Loop


def test_run_uses_a_callable_loop_factory() -> None:
    made = []

    def factory() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        made.append(loop)
        return loop

    async def main() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert bridges.run(main, frameworks=None, loop_factory=factory) is made[0]
    assert made[0].is_closed()


def test_run_rejects_an_unknown_loop_factory_with_what_it_accepts() -> None:
    with pytest.raises(bridges.LoopFactoryError, match=r"None .*'uvloop', or a callable"):
        bridges.run(asyncio.sleep, 0, frameworks=None, loop_factory="trio")


def test_uvloop_factory_without_uvloop_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # the way Python blocks an import
    with pytest.raises(bridges.LoopFactoryError, match=r"pip install 'tulip-bridges\[uvloop\]'"):
        bridges.run(asyncio.sleep, 0, frameworks=None, loop_factory="uvloop")


def test_run_with_debug_runs_the_loop_in_debug_mode() -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert bridges.run(main, frameworks=None, debug=True) is True
    assert bridges.run(main, frameworks=None) is False


def test_run_cancels_tasks_main_left_behind_and_closes_the_loop() -> None:
    left: list[asyncio.Task[None]] = []

    async def main() -> None:
        left.append(asyncio.ensure_future(asyncio.sleep(3600)))

    bridges.run(main, frameworks=None)
    assert left[0].cancelled()


def test_run_waits_for_the_default_executor_to_finish() -> None:
    finished = threading.Event()

    def work() -> None:
        finished.wait(0.05)
        finished.set()

    async def main() -> None:
        asyncio.get_running_loop().run_in_executor(None, work)

    bridges.run(main, frameworks=None)
    assert finished.is_set()


def test_run_returns_none_when_the_hub_is_asked_to_stop() -> None:
    cleaned_up = []

    async def main() -> str:
        bridges.current_hub().request_stop("a test")
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.append(True)
        return "never"

    assert bridges.run(main, frameworks=None) is None
    assert cleaned_up == [True]


def test_a_stop_requested_from_another_thread_stops_the_hub() -> None:
    async def main() -> None:
        hub = bridges.current_hub()
        threading.Thread(target=hub.request_stop, args=("another thread",)).start()
        await asyncio.sleep(3600)

    assert bridges.run(main, frameworks=None) is None


def test_main_can_be_a_concurrent_future() -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert bridges.run(pool.submit(pow, 2, 10), frameworks=None) == 1024


class CallableJob:
    """A primitive that is also callable, as gevent's AsyncResult is."""

    def __call__(self, *args: object) -> None:
        raise AssertionError("run() called the primitive instead of awaiting it")


def test_run_awaits_a_callable_primitive_that_awaitable_knows() -> None:
    async def finish(job: CallableJob) -> str:
        return "awaited"

    bridges.register(CallableJob, finish)
    assert bridges.run(CallableJob(), frameworks=None) == "awaited"


def test_run_refuses_arguments_for_a_non_callable_main_with_a_bridge_error() -> None:
    async def main() -> None:
        pass

    coro = main()
    with pytest.raises(bridges.UsageError, match="Pass the function itself"):
        bridges.run(coro, 1, frameworks=None)
    coro.close()


def test_run_reports_a_leftover_task_that_ignores_cancellation_and_still_returns() -> None:
    contexts: list[dict[str, object]] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def main() -> str:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: contexts.append(c))
        asyncio.ensure_future(stubborn())  # noqa: RUF006 - left behind on purpose
        return "done"

    assert bridges.run(main, frameworks=None, stop_timeout=0.2) == "done"
    assert any("ignored cancellation" in str(c["message"]) for c in contexts), contexts
