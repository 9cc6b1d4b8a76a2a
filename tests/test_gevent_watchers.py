"""libev's rules for watchers and ``run()`` that gevent's code and tests rely on, on our loop."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from bridges import gevent as bg

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def loop() -> Iterator[bg.AsyncioLoop]:
    """A standalone loop of our own, as ``gevent.config.loop(default=False)`` makes one."""
    made = bg.AsyncioLoop(default=False)
    yield made
    made.destroy()


def test_a_started_watchers_priority_cannot_change(loop: bg.AsyncioLoop) -> None:
    timer = loop.timer(10)
    timer.start(lambda: None)
    with pytest.raises(AttributeError, match="active watcher"):
        timer.priority = 1
    timer.stop()
    timer.priority = 1
    assert timer.priority == 1


def test_a_one_shot_timer_drops_its_callback_and_args_once_it_fired(
    loop: bg.AsyncioLoop,
) -> None:
    fired = []
    timer = loop.timer(0.001)
    timer.start(fired.append, "x")
    loop.run()
    assert fired == ["x"]
    assert (timer.active, timer.callback, timer.args) == (False, None, None)


def test_a_one_shot_timer_restarted_by_its_callback_fires_again_then_drops_them(
    loop: bg.AsyncioLoop,
) -> None:
    fired: list[int] = []
    timer = loop.timer(0.001)

    def again(n: int) -> None:
        fired.append(n)
        if n < 2:
            timer.start(again, n + 1)

    timer.start(again, 0)
    loop.run()
    assert fired == [0, 1, 2]
    assert timer.callback is None


def test_run_once_waits_for_something_to_happen(loop: bg.AsyncioLoop) -> None:
    fired = []
    start = time.perf_counter()
    # Timers count from the loop's cached time (libev's): refresh it after
    # `start`, so that the timer is due 50 ms after it at the earliest.
    loop.update_now()
    timer = loop.timer(0.05)
    timer.start(fired.append, "late")
    other = loop.timer(10)
    other.start(fired.append, "never")
    loop.run(once=True)
    assert fired == ["late"]
    assert time.perf_counter() - start >= 0.04
    other.stop()


def test_run_nowait_does_not_wait(loop: bg.AsyncioLoop) -> None:
    fired = []
    timer = loop.timer(10)
    timer.start(fired.append, "never")
    start = time.perf_counter()
    loop.run(nowait=True)
    timer.stop()
    assert time.perf_counter() - start < 5
    assert fired == []


def test_outside_a_pass_the_standalone_loop_keeps_libevs_cached_clock(
    loop: bg.AsyncioLoop,
) -> None:
    loop.update_now()
    cached = loop.now()
    time.sleep(0.03)
    assert loop.now() == cached
    fired = []
    timer = loop.timer(0.02)
    # Counted from the cached time, which is already 30 ms old: due at once,
    # so a pass that does not wait runs it.
    timer.start(fired.append, "due")
    loop.run(nowait=True)
    assert fired == ["due"]
    loop.update_now()
    assert loop.now() >= cached + 0.03


def test_a_timer_started_with_update_counts_from_the_current_time(loop: bg.AsyncioLoop) -> None:
    loop.update_now()
    time.sleep(0.03)
    fired = []
    timer = loop.timer(0.05)
    start = time.perf_counter()
    timer.start(fired.append, "due", update=True)
    loop.run(once=True)
    assert fired == ["due"]
    assert time.perf_counter() - start >= 0.04


def test_inside_bridges_run_the_loops_time_is_asyncios_clock_read_live() -> None:
    import asyncio

    import gevent

    import bridges

    async def main() -> float:
        gloop = gevent.get_hub().loop
        before = gloop.now()
        await asyncio.sleep(0.03)
        # No gevent pass ran in between: a cached clock would not have moved.
        return gloop.now() - before

    assert bridges.run(main, frameworks=["gevent"]) >= 0.025


def test_a_stopped_timer_started_again_waits_its_full_duration(loop: bg.AsyncioLoop) -> None:
    # libev resumes a stopped timer's remaining time (natively this one would
    # fire after 20 ms, and a reused gevent.Timeout would expire early);
    # gevent's libuv loop and ours start it afresh.  docs/gevent.md says why.
    fired = []
    timer = loop.timer(0.05)
    timer.start(fired.append, "first")
    time.sleep(0.03)
    timer.stop()
    start = time.perf_counter()
    timer.start(fired.append, "again", update=True)
    loop.run(once=True)
    assert fired == ["again"]
    assert time.perf_counter() - start >= 0.045
