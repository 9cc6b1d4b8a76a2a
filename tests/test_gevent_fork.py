"""fork() while the hub runs gevent: the child gets pollers of its own, the parent is untouched.

Each test forks inside a fresh interpreter (tests/_gevent_helpers.py), never
inside the test runner.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _gevent_helpers import run_patched, run_script

pytestmark = pytest.mark.timeout(90)

# The child closes a socket that the parent is waiting on, then uses its own
# hub: gevent sockets, an asyncio timer through bg.wait, and a wake-up from
# another thread through asyncio's self-pipe.  The parent's wait must still
# be served, and the child's exit status says whether its hub worked.
FORK_SCENARIO = """
import asyncio, json, os, threading
import gevent, gevent.os, gevent.socket
import bridges
from bridges import gevent as bg

def child_work(inherited):
    inherited.close()  # the parent still waits on this socket
    left, right = gevent.socket.socketpair()
    right.sendall(b"k")
    got = left.recv(1)
    slept = bg.wait(asyncio.sleep(0.01, result="aio"))
    loop = asyncio.get_running_loop()
    woken = loop.create_future()
    threading.Thread(target=loop.call_soon_threadsafe, args=(woken.set_result, "thread")).start()
    from_thread = bg.wait(woken)
    return (got, slept, from_thread) == (b"k", "aio", "thread")

def scenario():
    waiting, feeder = gevent.socket.socketpair()
    receiver = gevent.spawn(waiting.recv, 1)
    gevent.sleep(0.01)  # the parent now waits on `waiting`
    pid = FORK()
    if pid == 0:
        try:
            ok = child_work(waiting)
        except BaseException:
            ok = False
        os._exit(0 if ok else 3)
    _, status = gevent.os.waitpid(pid, 0)  # the child has closed its copy of `waiting`
    feeder.sendall(b"p")
    got = receiver.get(timeout=5)
    return [got.decode(), os.WEXITSTATUS(status)]

async def main():
    return await bridges.awaitable(gevent.spawn(scenario))

print(json.dumps(bridges.run(main, frameworks=["gevent"])))
"""


def test_a_forked_child_gets_its_own_pollers_and_the_parent_keeps_its_waits(
    tmp_path: Path,
) -> None:
    outcome = run_script(tmp_path, FORK_SCENARIO.replace("FORK()", "gevent.os.fork_and_watch()"))
    assert outcome == ["p", 0]


def test_os_fork_after_patch_all_renews_the_child_the_same_way(tmp_path: Path) -> None:
    body = FORK_SCENARIO.replace("FORK()", "os.fork()")
    assert run_patched(tmp_path, body) == ["p", 0]


def test_fork_on_uvloop_fails_in_the_child_with_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    outcome = run_script(
        tmp_path,
        """
import json, os
import gevent, gevent.os
import bridges

def scenario():
    pid = gevent.os.fork_and_watch()
    if pid == 0:  # never returns here: reinit raised in the child
        os._exit(0)
    _, status = gevent.os.waitpid(pid, 0)
    return os.WEXITSTATUS(status)

def child_fails():
    try:
        return scenario()
    except bridges.gevent.ForkNotSupportedError as exc:
        print(str(exc), flush=True)
        os._exit(5)

async def main():
    return await bridges.awaitable(gevent.spawn(child_fails))

print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory="uvloop")))
""",
    )
    assert outcome == 5


@pytest.mark.parametrize("loop_factory", [None, "uvloop"])
def test_gevent_subprocess_is_reaped_on_either_loop(
    tmp_path: Path, loop_factory: str | None
) -> None:
    # uvloop keeps SIGCHLD for itself; the gevent loop then polls its children.
    if loop_factory == "uvloop":
        pytest.importorskip("uvloop")
    outcome = run_script(
        tmp_path,
        f"""
import json, sys
import gevent, gevent.subprocess
import bridges

def scenario():
    child = gevent.subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(4)"])
    with gevent.Timeout(20):
        return child.wait()

async def main():
    return await bridges.awaitable(gevent.spawn(scenario))

print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory={loop_factory!r})))
""",
    )
    assert outcome == 4


def test_gevent_waitpid_of_any_child_sees_a_child_gevent_also_watches_by_pid(
    tmp_path: Path,
) -> None:
    outcome = run_script(
        tmp_path,
        """
import json, os, time
import gevent, gevent.os
import bridges

def scenario():
    pid = gevent.os.fork_and_watch()  # watched by pid from here on
    if pid == 0:
        time.sleep(0.2)
        os._exit(7)
    ticks = gevent.spawn(lambda: [gevent.sleep(0.01) for _ in range(5)])
    with gevent.Timeout(10):
        rpid, status = gevent.os.waitpid(-1, 0)  # libev's child(0) watcher
    return [rpid == pid, os.WEXITSTATUS(status), ticks.ready()]

async def main():
    return await bridges.awaitable(gevent.spawn(scenario))

print(json.dumps(bridges.run(main, frameworks=["gevent"])))
""",
    )
    # The child's status, and the other greenlets ran while waitpid(-1) waited.
    assert outcome == [True, 7, True]
