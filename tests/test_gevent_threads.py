"""Other threads waking the hub's loop: they run on until they block, as with libev.

A gevent thread-pool worker sets a task's result (an async watcher's
``send()``, which wakes the hub) and then marks the task done.  libev's
``send()`` keeps the GIL, so the hub's thread sees both at once; if the
wake-up let the hub run first, it would find the task unfinished and start a
second worker thread for the next task.  The scripts raise the switch
interval so that only a wake-up that releases the GIL lets the hub in between.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _gevent_helpers import run_script

pytestmark = pytest.mark.timeout(60)

ROUNDS = 40

SEQUENTIAL_APPLIES = textwrap.dedent(
    f"""
    import json, sys, threading
    import gevent

    def threads_used_by_sequential_applies():
        # Rounds of a few tasks, each round on a new pool: worker threads per round.
        pool = gevent.get_hub().threadpool
        used = []
        for _ in range({ROUNDS}):
            used.append(len({{pool.apply(threading.get_ident) for _ in range(4)}}))
            pool.kill()
        return used

    sys.setswitchinterval(5.0)
    """
)


def test_sequential_thread_pool_tasks_reuse_one_worker_on_the_standalone_loop(
    tmp_path: Path,
) -> None:
    threads = run_script(
        tmp_path,
        SEQUENTIAL_APPLIES + "print(json.dumps(threads_used_by_sequential_applies()))\n",
        env={"GEVENT_LOOP": "bridges.gevent.AsyncioLoop"},
    )
    assert threads == [1] * ROUNDS


@pytest.mark.parametrize("loop_factory", [None, "uvloop"])
def test_sequential_thread_pool_tasks_reuse_one_worker_on_the_hub(
    tmp_path: Path, loop_factory: str | None
) -> None:
    if loop_factory == "uvloop":
        pytest.importorskip("uvloop")
    threads = run_script(
        tmp_path,
        SEQUENTIAL_APPLIES
        + textwrap.dedent(
            f"""
            import bridges

            async def main():
                return await bridges.awaitable(gevent.spawn(threads_used_by_sequential_applies))

            used = bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})
            print(json.dumps(used))
            """
        ),
    )
    assert threads == [1] * ROUNDS
