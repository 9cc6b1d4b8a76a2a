"""Threads calling into the hub: 8 threads × 1,000 calls through each framework's thread entry.

Every call must be delivered, on the hub's thread, in the order each thread
made its calls (different threads may interleave).  The figures (how long the
8,000 calls took) are printed, never asserted: speed belongs to benchmarks/.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

from .flavors import BY_NAME, Flavor
from .harness import Reports, run_on_hub, skip_unless_available

THREADS = 8
CALLS = 1_000

Submit = Callable[..., Any]


def _call_soon_threadsafe() -> Submit:
    return asyncio.get_running_loop().call_soon_threadsafe


def _call_from_thread() -> Submit:
    from bridges import twisted as bt

    return bt.get_reactor().callFromThread  # type: ignore[no-any-return]


def _ioloop_add_callback() -> Submit:
    from bridges import tornado as btn

    return btn.ioloop().add_callback


def _gevent_threadsafe() -> Submit:
    from bridges import gevent as bg

    return bg.get_hub().loop.run_callback_threadsafe  # type: ignore[no-any-return]


def _anyio_from_thread() -> Submit:
    import anyio.from_thread
    import anyio.lowlevel

    token = anyio.lowlevel.current_token()

    def submit(fn: Callable[..., Any], *args: Any) -> Any:
        return anyio.from_thread.run_sync(fn, *args, token=token)

    return submit


ENTRIES: dict[str, tuple[Flavor | None, Callable[[], Submit]]] = {
    "loop.call_soon_threadsafe": (None, _call_soon_threadsafe),
    "reactor.callFromThread": (BY_NAME["twisted"], _call_from_thread),
    "IOLoop.add_callback": (BY_NAME["tornado"], _ioloop_add_callback),
    "gevent loop.run_callback_threadsafe": (BY_NAME["gevent"], _gevent_threadsafe),
    "anyio.from_thread.run_sync": (None, _anyio_from_thread),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_every_call_from_other_threads_is_delivered_on_the_hub_in_order(entry: str) -> None:
    flavor, make_submit = ENTRIES[entry]
    if flavor is not None:
        skip_unless_available(flavor)

    async def scenario(reports: Reports) -> tuple[float, dict[int, list[int]]]:
        loop = asyncio.get_running_loop()
        hub_thread = threading.get_ident()
        submit = make_submit()
        received: dict[int, list[int]] = {index: [] for index in range(THREADS)}
        wrong_thread: list[int] = []
        finished = loop.create_future()
        done_threads: list[int] = []

        def deliver(index: int, seq: int) -> None:
            if threading.get_ident() != hub_thread:
                wrong_thread.append(threading.get_ident())
            received[index].append(seq)

        def thread_done(index: int) -> None:
            done_threads.append(index)
            if len(done_threads) == THREADS and not finished.done():
                finished.set_result(None)

        def caller(index: int) -> None:
            for seq in range(CALLS):
                submit(deliver, index, seq)
            submit(thread_done, index)

        threads = [
            threading.Thread(target=caller, args=(index,), name=f"caller-{index}", daemon=True)
            for index in range(THREADS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        done, _ = await asyncio.wait({finished}, timeout=60)
        elapsed = time.perf_counter() - started
        for thread in threads:
            await loop.run_in_executor(None, thread.join, 10)
        lost = {index: CALLS - len(seqs) for index, seqs in received.items() if len(seqs) != CALLS}
        assert done, (
            f"through {entry}, {THREADS} threads × {CALLS} calls should all be delivered, but "
            f"only {len(done_threads)} threads finished; calls lost per thread: {lost}"
        )
        assert not lost, f"through {entry}, calls were lost per thread: {lost}"
        assert not wrong_thread, (
            f"through {entry}, {len(wrong_thread)} calls ran off the hub's thread "
            f"(on {sorted(set(wrong_thread))})"
        )
        out_of_order = [index for index, seqs in received.items() if seqs != list(range(CALLS))]
        assert not out_of_order, (
            f"through {entry}, the calls of threads {out_of_order} arrived out of the order "
            "each thread made them"
        )
        assert not reports.contexts, f"the error sink received: {reports.describe()}"
        return elapsed, received

    frameworks = list(flavor.frameworks) if flavor is not None else []
    (elapsed, _), _ = run_on_hub(scenario, frameworks)
    print(
        f"\n{entry}: {THREADS} threads × {CALLS} calls delivered in order in {elapsed:.3f}s "
        f"({THREADS * CALLS / elapsed:,.0f} calls/s)"
    )
