"""One child reaper for the adapters: polls for exited children, backing off.

Adapters that cannot rely on SIGCHLD (the hub's loop may own it, uvloop keeps
it for its own subprocesses) poll instead: a first check soon after a child
is started, then at doubling intervals up to a ceiling while children are
still watched.  Twisted's reactor and gevent's child watchers share this one.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

__all__ = ["ChildReaper"]


class ChildReaper:
    """Calls ``reap()`` at ``first``, ``2 * first``, ... up to ``last`` seconds apart.

    It keeps polling while ``pending()`` is true and stops by itself when it
    is false; :meth:`soon` starts (or restarts, from ``first``) the polling
    on the loop ``loop_of()`` returns, and :meth:`cancel` stops it.
    """

    __slots__ = ("_handle", "_last", "_loop_of", "_pending", "_reap", "first")

    def __init__(
        self,
        loop_of: Callable[[], Optional[asyncio.AbstractEventLoop]],
        reap: Callable[[], object],
        pending: Callable[[], bool],
        *,
        first: float,
        last: float,
    ) -> None:
        self._loop_of = loop_of
        self._reap = reap
        self._pending = pending
        self.first = first
        self._last = last
        self._handle: Optional[asyncio.TimerHandle] = None

    @property
    def polling(self) -> bool:
        return self._handle is not None

    def soon(self) -> bool:
        """Start polling from the shortest interval; False if there is no loop to poll on."""
        self.cancel()
        loop = self._loop_of()
        if loop is None:
            return False
        self._handle = loop.call_later(self.first, self._tick, self.first)
        return True

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self, delay: float) -> None:
        self._handle = None
        if not self._pending():
            return
        self._reap()
        loop = self._loop_of()
        if self._pending() and loop is not None:
            delay = min(delay * 2, self._last)
            self._handle = loop.call_later(delay, self._tick, delay)
