"""The interest sweep: asking every dispatcher ``readable()``/``writable()``, at a bounded cost."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._compat import _map_of

if TYPE_CHECKING:
    pass


SWEEP_INTERVAL = 0.05
"""Seconds between interest sweeps when no dispatcher had an event."""

SWEEP_SHARE = 0.02
"""The largest share of the hub thread's CPU time that interest sweeps may take.

After a sweep that took ``c`` seconds of CPU, ``w = c * (1 / SWEEP_SHARE -
1)``, the next one waits until the hub's thread has spent ``w`` more CPU
time, or until ``max(w, SWEEP_INTERVAL)`` seconds have passed: with 1,000
dispatchers (a sweep of 0.2-0.4 ms) a change of mind without an event is
seen within 10-20 ms of a busy hub's time and at most 50 ms; with 100,
within about 1-2 ms of its time; with a few, on the same loop pass.  CPU
time rather than wall time: a hub that shares its CPU with other processes
(or waits for the GIL) does not sweep more often per event because of them."""


SWEEP_MIN_WAIT = 0.001
"""The shortest wall-clock wait for a sweep's budget: the loops' timers are no finer.

asyncio's selector loop rounds its poll timeout up to a millisecond, and
uvloop counts its timers in milliseconds, running a shorter one on the next
pass without waiting: with a handful of dispatchers (a sweep of a few
microseconds) a finer wait made the hub re-arm its timer on every pass,
spinning while it waited for its next event."""


class Sweep:
    """The interest sweep of the driver (a mixin of ``_Driver``)."""

    def _after_event(self) -> None:
        """A handler ran: sweep now if the budget allows, else as soon as it does."""
        if self.detached:
            return
        if self.watched:
            self._sync_changed_maps()
        if self.loop.time() >= self.next_sweep_at:
            self._sweep_when_due()
        else:
            self.sweep_handle = self.loop.call_at(self.next_sweep_at, self._sweep_when_due)

    def _sweep_when_due(self) -> None:
        """Sweep if this thread's CPU budget or the interval allows, else wait for it.

        Called once the wall-clock time the budget needs at least has
        passed (``next_sweep_at``); the CPU clock, a system call, is read
        only then.
        """
        self.sweep_handle = None
        now = self.loop.time()
        wait = min(self.next_sweep_cpu - time.thread_time(), self.sweep_deadline - now)
        if wait > 0:
            self.next_sweep_at = now + max(wait, SWEEP_MIN_WAIT)
            self.sweep_handle = self.loop.call_at(self.next_sweep_at, self._sweep_when_due)
        else:
            self._sweep()

    def _sync_changed_maps(self) -> None:
        synced = self.synced
        for key, socket_map in list(self.watched.items()):
            if socket_map != synced.get(key):
                self._sync(socket_map)

    def _sweep(self) -> None:
        handle = self.sweep_handle
        if handle is not None:
            handle.cancel()
            self.sweep_handle = None
        # The budget is this thread's CPU time: wall time would count the
        # waits for the GIL that worker threads (waitress's) hold meanwhile.
        started = time.thread_time()
        if self.watched:
            self._sync_changed_maps()
        self._refresh_all(list(self.entries.values()))
        ended = time.thread_time()
        wait = (ended - started) * (1.0 / SWEEP_SHARE - 1.0)
        now = self.loop.time()
        # The thread's CPU clock runs no faster than the wall clock: before
        # next_sweep_at the CPU budget cannot have been spent.
        self.next_sweep_at = now + max(wait, SWEEP_MIN_WAIT)
        self.next_sweep_cpu = ended + wait
        self.sweep_deadline = now + max(wait, SWEEP_INTERVAL)

    def _arm_tick(self) -> None:
        if self.tick_handle is None and not self.detached:
            self.tick_handle = self.loop.call_later(SWEEP_INTERVAL, self._tick)

    def _tick(self) -> None:
        self.tick_handle = None
        if self.sweep_handle is None:
            self._sweep()
        if self.entries or self.watched:
            self._arm_tick()

    def _sync(self, socket_map: dict[int, Any]) -> None:
        """Bring the registrations of a plain dict map up to date (O(len))."""
        self.synced[id(socket_map)] = dict(socket_map)
        entries = self.entries
        for fd, obj in list(socket_map.items()):
            entry = entries.get(fd)
            if entry is None or entry.obj is not obj:
                self.track(socket_map, fd, obj, watched=True)
        for entry in [e for e in entries.values() if e.map is socket_map]:
            if socket_map.get(entry.fd) is not entry.obj:
                self._drop(entry)
        if not socket_map:
            self._map_emptied(socket_map)

    def _map_emptied(self, socket_map: Any) -> None:
        for fut in self.loop_waiters.pop(id(socket_map), ()):
            if not fut.done():
                fut.set_result(None)

    # -- refresh, attach, detach --

    def refresh(self, dispatcher: Any = None) -> None:
        if dispatcher is None:
            self._sweep()
            return
        entry = self.by_obj.get(id(dispatcher))
        if entry is None:
            socket_map = _map_of(dispatcher)
            if socket_map is not None:
                self.adopt(socket_map)
                if isinstance(socket_map, dict):
                    self._sync(socket_map)
            entry = self.by_obj.get(id(dispatcher))
        if entry is not None:
            self._refresh(entry)
