"""The private details of gevent and asyncio the gevent adapter relies on: one behaviour test each.

Each test goes through the function of bridges/gevent/_compat.py named in its
docstring and checks what gevent or asyncio then does.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import warnings
from typing import Any

import pytest

import bridges
from bridges.gevent import _compat

pytestmark = pytest.mark.timeout(60)


def test_replace_selector_moves_the_loops_registrations_to_the_new_selector() -> None:
    """replace_selector swaps ``BaseSelectorEventLoop._selector``."""
    loop = asyncio.new_event_loop()
    left, right = socket.socketpair()
    try:
        got = loop.create_future()
        loop.add_reader(left.fileno(), lambda: got.done() or got.set_result(left.recv(10)))
        fresh = selectors.DefaultSelector()
        _compat.replace_selector(loop, fresh)
        assert fresh.get_key(left.fileno()) is not None
        right.send(b"moved")
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"moved"
    finally:
        loop.remove_reader(left.fileno())
        left.close()
        right.close()
        loop.close()


def test_renew_after_fork_gives_the_loop_a_working_self_pipe() -> None:
    """renew_after_fork uses ``_close_self_pipe``/``_make_self_pipe``/``_csock``."""
    loop = asyncio.new_event_loop()
    try:
        assert _compat.renew_after_fork(loop) is True

        async def woken_from_a_thread() -> str:
            done = loop.create_future()
            import threading

            threading.Thread(
                target=lambda: loop.call_soon_threadsafe(done.set_result, "woken")
            ).start()
            return await asyncio.wait_for(done, 5)

        assert loop.run_until_complete(woken_from_a_thread()) == "woken"
    finally:
        loop.close()


def test_clear_default_executor_makes_the_loop_use_a_fresh_one() -> None:
    """clear_default_executor resets ``BaseEventLoop._default_executor``."""
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.new_event_loop()
    mine = ThreadPoolExecutor(1)
    try:
        loop.set_default_executor(mine)
        _compat.clear_default_executor(loop, mine)
        mine.shutdown()  # the loop must no longer use it
        assert loop.run_until_complete(loop.run_in_executor(None, lambda: "fresh")) == "fresh"
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_existing_threadpool_is_none_until_the_hub_made_one() -> None:
    """existing_threadpool reads ``Hub._threadpool`` without creating a pool."""
    import gevent
    from gevent._hub_local import get_hub_if_exists

    made_here = get_hub_if_exists() is None
    hub = gevent.get_hub()
    before = _compat.existing_threadpool(hub)
    pool = hub.threadpool
    try:
        assert before in (None, pool)
        assert _compat.existing_threadpool(hub) is pool
    finally:
        pool.kill()
        if made_here:
            # A native hub left in this thread would be the next bridges hub's
            # "previous" one (tests/test_gevent.py checks none is left).
            hub.destroy(destroy_loop=True)


def test_existing_threadpool_warns_when_gevent_no_longer_says_where_the_pool_is() -> None:
    class WithoutThePrivateAttribute:
        pass

    with pytest.warns(RuntimeWarning, match="cannot kill it at stop"):
        assert _compat.existing_threadpool(WithoutThePrivateAttribute()) is None  # type: ignore[arg-type]


def test_the_hub_kills_gevents_thread_pool_when_it_stops() -> None:
    pools: list[Any] = []

    def in_a_greenlet() -> str:
        from bridges import gevent as bg

        pool = bg.get_hub().threadpool
        pools.append(pool)
        return pool.spawn(lambda: "from a thread").get()

    async def main() -> str:
        import gevent

        return await bridges.awaitable(gevent.spawn(in_a_greenlet))

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert bridges.run(main, frameworks=["gevent"]) == "from a thread"
    assert pools[0].size == 0


def test_executor_future_class_is_what_the_gevent_executor_returns_and_it_carries_the_outcome() -> (
    None
):
    """executor_future_class: ``gevent.threadpool._FutureProxy`` and its ``asyncresult``."""
    import gevent.threadpool

    def in_greenlet() -> list[Any]:
        executor = gevent.threadpool.ThreadPoolExecutor(1)
        try:
            future = executor.submit(lambda: "from a thread")
            return [
                type(future) is _compat.executor_future_class(),
                future.asyncresult.get(timeout=10),
            ]
        finally:
            executor.shutdown()

    async def main() -> Any:
        # on a hub, so that no native gevent hub is left behind in this thread
        return await bridges.awaitable(gevent.spawn(in_greenlet))

    import gevent

    assert bridges.run(main, frameworks=["gevent"]) == [True, "from a thread"]


def test_hub_if_exists_getter_finds_the_threads_hub_without_making_one() -> None:
    """hub_if_exists_getter's getter returns this thread's gevent hub, and makes none."""
    import gevent

    from bridges.gevent._api import _BridgeHub

    get = _compat.hub_if_exists_getter()

    async def main() -> Any:
        return get()

    assert isinstance(bridges.run(main, frameworks=["gevent"]), _BridgeHub)
    existing = get()
    assert get() is existing  # asking made none
    hub = gevent.get_hub()
    try:
        assert existing in (None, hub)
        assert get() is hub
    finally:
        if existing is None:
            hub.destroy(destroy_loop=True)


@pytest.mark.parametrize("loop_factory", ["asyncio", "uvloop"])
def test_call_soon_threadsafe_keeping_gil_wakes_a_waiting_loop_from_another_thread(
    loop_factory: str,
) -> None:
    """call_soon_threadsafe_keeping_gil queues through ``_call_soon`` and writes to ``_csock``."""
    import threading

    if loop_factory == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    call = _compat.call_soon_threadsafe_keeping_gil(loop)
    ran: list[tuple[str, int]] = []

    def from_thread() -> None:
        call(lambda what: (ran.append((what, threading.get_ident())), loop.stop()), "woken")

    # The loop waits in its selector with nothing due: only the wake-up ends the wait.
    timer = threading.Timer(0.05, from_thread)
    guard = loop.call_later(5, loop.stop)
    try:
        timer.start()
        loop.run_forever()
    finally:
        guard.cancel()
        timer.join(5)
        loop.close()
    assert ran == [("woken", threading.get_ident())]
