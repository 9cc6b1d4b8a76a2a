"""asyncio's subprocesses after ``patch_all()``: their exits seen through gevent's child watchers.

On the stdlib loop asyncio learns that a subprocess exited from its
policy's child watcher.  From Python 3.12 that is ``PidfdChildWatcher``,
whose loop callback calls ``os.waitpid(pid, 0)``.  After ``patch_all()`` that
is gevent's ``waitpid``, and asyncio's transport forked the child through
gevent's ``Popen``, which watches it: gevent's ``waitpid`` then waits on
gevent until gevent's own child watcher fires.  Made from a bare loop
callback, that wait is a gevent-blocking call with no task to suspend, which
the hub must refuse, so the transport would never learn of the exit.
(Before 3.12 ``ThreadedChildWatcher`` makes the same call from a thread,
which starts a native gevent hub per child to wait in.)

While gevent is attached to a hub on the stdlib loop and ``os.waitpid`` is
gevent's, the policy's watcher is :class:`GeventChildWatcher`: each child is
watched by a child watcher of the hub's gevent loop, which reaps with the
real ``waitpid`` and tells gevent's ``Popen`` and asyncio in the same pass.
The watcher asyncio had is put back when gevent detaches.  A watcher the
user set on purpose is left alone, and uvloop, which reaps its children
itself, needs none.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from ._loop import AsyncioLoop
    from ._watchers import _Child

__all__ = ["GeventChildWatcher", "watch_asyncio_children"]


@contextmanager
def _child_watcher_api() -> Iterator[None]:
    # Python 3.12 deprecates the child-watcher API (3.14 removes it); asyncio
    # itself still calls it on 3.12 and 3.13, which is all this module is for.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


with _child_watcher_api():

    class GeventChildWatcher(asyncio.AbstractChildWatcher):  # type: ignore[name-defined,misc]
        """asyncio's child watcher, answered by the child watchers of a gevent loop."""

        def __init__(self, gloop: AsyncioLoop) -> None:
            self._gloop = gloop
            self._watchers: dict[int, tuple[_Child, Callable[..., Any], tuple[Any, ...]]] = {}
            self._closed = False

        def add_child_handler(self, pid: int, callback: Callable[..., Any], *args: Any) -> None:
            self.remove_child_handler(pid)
            watcher = self._gloop.child(pid, ref=False)
            self._watchers[pid] = (watcher, callback, args)
            watcher.start(self._exited, watcher)

        def _exited(self, watcher: _Child) -> None:
            watcher.stop()
            entry = self._watchers.get(watcher.pid)
            if entry is None or entry[0] is not watcher:
                return
            del self._watchers[watcher.pid]
            _, callback, args = entry
            callback(watcher.pid, os.waitstatus_to_exitcode(watcher.rstatus), *args)

        def remove_child_handler(self, pid: int) -> bool:
            entry = self._watchers.pop(pid, None)
            if entry is None:
                return False
            entry[0].stop()
            return True

        def hand_over(self, successor: asyncio.AbstractChildWatcher) -> None:  # type: ignore[name-defined]
            """Stop, giving the children still running to ``successor`` to watch."""
            self._closed = True
            for pid, (watcher, callback, args) in list(self._watchers.items()):
                watcher.stop()
                successor.add_child_handler(pid, callback, *args)
            self._watchers.clear()

        def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
            """Nothing to attach: the watcher belongs to the gevent loop it was made with."""

        def close(self) -> None:
            self._closed = True
            for pid in list(self._watchers):
                self.remove_child_handler(pid)

        def is_active(self) -> bool:
            return not self._closed

        def __enter__(self) -> GeventChildWatcher:
            return self

        def __exit__(self, *exc_info: object) -> None:
            return None


def watch_asyncio_children(
    gloop: AsyncioLoop, aio_loop: asyncio.AbstractEventLoop
) -> Callable[[], None] | None:
    """Make asyncio's child watcher a :class:`GeventChildWatcher` where gevent needs it.

    Returns what puts the previous watcher back, or None when nothing was changed.
    """
    from gevent import monkey

    if (
        sys.platform == "win32"
        or not monkey.is_object_patched("os", "waitpid")
        or not isinstance(aio_loop, asyncio.SelectorEventLoop)
    ):
        return None
    policy = asyncio.get_event_loop_policy()
    with _child_watcher_api():
        previous = policy.get_child_watcher()
        if type(previous) not in (asyncio.PidfdChildWatcher, asyncio.ThreadedChildWatcher):
            return None
        ours = GeventChildWatcher(gloop)
        policy.set_child_watcher(ours)

    def restore() -> None:
        # Children still running are handed over, so their transports still
        # learn of their exit (from the native gevent hub once this one is gone).
        with _child_watcher_api():
            ours.hand_over(previous)
            if policy.get_child_watcher() is ours:
                policy.set_child_watcher(previous)

    return restore
