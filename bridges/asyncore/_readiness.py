"""Readiness in batches: every dispatcher's fd in one epoll set, the loop's one reader.

``asyncore.poll`` hands all of its dispatchers' fds to one ``select`` and then
calls the handlers of every ready one in a tight loop.  Registering each fd
with the asyncio loop instead costs, per ready fd, the loop's selector-key
lookup, a ``Handle`` and a trip through the ready queue; with many active
connections that is most of what the hub adds to the handlers.  So where
``select.epoll`` exists, the dispatchers' fds sit in a private epoll set, and
the loop watches only that set's fd: when it is ready, one callback polls it
(timeout 0) and dispatches every ready dispatcher, as ``asyncore.poll`` does,
without rebuilding any fd list.  The hub's fd registry still records
asyncore as the owner of each fd (``Hub.claim``), so another framework's
``add_reader`` on one of them is refused as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from asyncio.selector_events import BaseSelectorEventLoop
from typing import TYPE_CHECKING, Any

from .._epoll import set_interest
from ._state import _OWNER

if TYPE_CHECKING:
    from ._driver import _Entry

# Which epoll flags call which handler: as asyncio's epoll selector maps
# them (an error or hang-up wakes the reader and the writer alike).
_IN = select.EPOLLIN if hasattr(select, "epoll") else 0
_READABLE = ~select.EPOLLOUT if hasattr(select, "epoll") else 0
_WRITABLE = ~select.EPOLLIN if hasattr(select, "epoll") else 0


def batches_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the driver batches readiness on ``loop``.

    Only on asyncio's own selector loops: their per-fd dispatch is Python
    code, which the batch saves on every ready fd.  uvloop's per-fd dispatch
    is C, so there the batch's second ``epoll_wait`` per pass costs more
    than it saves unless many fds are ready at once (measured: 50 active
    connections 8 % cheaper, one active beside 1,000 idle 26 % dearer); its
    fds stay registered with the loop one by one, as on platforms without
    epoll.
    """
    return hasattr(select, "epoll") and isinstance(loop, BaseSelectorEventLoop)


class Readiness:
    """The private epoll set and its batch callback (a mixin of ``_Driver``)."""

    poller: Any
    ready: list[tuple[int, int]] | None
    """The batch being dispatched (``epoll.poll``'s list), None between batches."""

    def _open_poller(self) -> None:
        self.ready = None
        self.poller = select.epoll()
        self.hub.add_reader(self.poller.fileno(), self._on_ready, owner=_OWNER)

    def _close_poller(self) -> None:
        if self.poller is not None and not self.poller.closed:
            self.hub.remove_reader(self.poller.fileno(), owner=_OWNER)
            self.poller.close()

    def _poll_for(self, entry: _Entry, reading: bool, writing: bool) -> None:
        """Watch ``entry``'s fd in the epoll set as asked; claim it in the hub's registry."""
        hub, fd = self.hub, entry.fd
        was = (select.EPOLLIN if entry.reading else 0) | (select.EPOLLOUT if entry.w else 0)
        mask = (select.EPOLLIN if reading else 0) | (select.EPOLLOUT if writing else 0)
        gained_r = reading and not entry.reading
        gained_w = writing and not entry.w
        hub.claim(fd, owner=_OWNER, reader=gained_r, writer=gained_w)
        try:
            self._epoll_ctl(fd, was, mask)
        except BaseException:
            hub.unclaim(fd, owner=_OWNER, reader=gained_r, writer=gained_w)
            raise
        hub.unclaim(
            fd,
            owner=_OWNER,
            reader=entry.reading and not reading,
            writer=entry.w and not writing,
        )

    def _epoll_ctl(self, fd: int, was: int, mask: int) -> None:
        poller = self.poller
        try:
            if not mask:
                # A socket closed behind the map's back: epoll already forgot it.
                with contextlib.suppress(OSError):
                    poller.unregister(fd)
                return
            set_interest(poller, fd, mask, bool(was))
        except ValueError:  # the epoll set is closed: the hub has detached
            if mask:
                raise

    def _on_ready(self) -> None:
        """Dispatch every ready dispatcher: one loop callback per pass, as ``asyncore.poll``.

        For each ready fd the reader runs before the writer, as the loop
        would run them; a handler that changes its dispatcher's interest
        decides whether the writer still runs.
        """
        self.ready = ready = self.poller.poll(0)
        get = self.entries.get
        nobody = _NOBODY
        try:
            for fd, flags in ready:
                entry = get(fd, nobody)
                if flags == _IN and entry.r:
                    entry.on_read()  # the usual event: readable, and it wants to read
                elif flags:
                    self._on_flags(entry, flags)
        finally:
            self.ready = None
        if self.wakers and any(get(fd, nobody).wakes for fd, _ in ready):
            self._sweep()
        elif self.sweep_handle is None:
            self._after_event()

    def _on_flags(self, entry: _Entry, flags: int) -> None:
        """Any other event: the reader before the writer, as the loop would run them.

        A read event on a registration kept lazily (``_set_interest``) asks
        the dispatcher again first; a handler that changes its dispatcher's
        interest decides whether the writer still runs.
        """
        writer = flags & _WRITABLE and entry.w
        if (
            flags & _READABLE
            and entry.reading
            and (entry.r or not entry.context.run(self._read_unwanted, entry))
        ):
            entry.on_read()
        if writer and entry.w:
            entry.on_write()

    def _forget_ready(self, fd: int) -> None:
        """A dispatcher left during a batch: its events of that batch go with it.

        Another dispatcher may get the same fd number before the batch ends;
        the events polled for the first must not reach it.
        """
        ready = self.ready
        for i, (ready_fd, _) in enumerate(ready):
            if ready_fd == fd:
                ready[i] = (fd, 0)


class _Nobody:
    """What an fd with no dispatcher any more maps to in a batch: it wants nothing."""

    r = reading = w = wakes = False


_NOBODY: Any = _Nobody()
