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

The batch costs a second ``epoll_wait`` per pass, which pays only when
several fds are ready at once.  When one connection is the only one active
(the same fd alone in ``LONE_BATCHES`` batches in a row), its fd is
registered with the loop itself, as without a batch; the first batch that
has any other fd ready takes it back.
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

LONE_BATCHES = 8
"""Batches in a row with the same fd alone ready after which the loop watches that fd itself."""


def batches_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the driver batches readiness on ``loop``.

    Only on asyncio's own selector loops: their per-fd dispatch is Python
    code, which the batch saves on every ready fd.  uvloop's per-fd dispatch
    is C, so there the batch's second ``epoll_wait`` per pass costs more
    than it saves unless many fds are ready at once (measured: 50 active
    connections 8 % cheaper, one active beside 1,000 idle 26 % dearer; with
    the lone connection watched by the loop itself, no gain at 50 active
    within the noise of two interleaved runs); its fds stay registered with
    the loop one by one, as on platforms without epoll.
    """
    return hasattr(select, "epoll") and isinstance(loop, BaseSelectorEventLoop)


class Readiness:
    """The private epoll set and its batch callback (a mixin of ``_Driver``)."""

    poller: Any
    ready: list[tuple[int, int]] | None
    """The batch being dispatched (``epoll.poll``'s list), None between batches."""
    lone_fd: int
    """The fd that was alone ready in the last batches (-1: none)."""
    lone_batches: int
    """How many batches in a row ``lone_fd`` was alone in."""
    alone: _Entry | None
    """The dispatcher whose fd the loop watches itself, out of the batch."""

    def _open_poller(self) -> None:
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
        if self.alone is not None:
            self._batch(self.alone)  # several connections are active: back into the batch
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
        if len(ready) == 1:
            self._count_lone(ready[0][0])
        elif self.lone_batches:
            self.lone_batches = 0
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

    def _count_lone(self, fd: int) -> None:
        """``fd`` was alone in a batch: after ``LONE_BATCHES`` in a row, out of the batch."""
        if fd != self.lone_fd:
            self.lone_fd = fd
            self.lone_batches = 1
            return
        self.lone_batches += 1
        if self.lone_batches >= LONE_BATCHES:
            self.lone_batches = 0
            entry = self.entries.get(fd)
            if entry is not None and entry.batched:
                self._unbatch(entry)

    def _unbatch(self, entry: _Entry) -> None:
        """The loop watches ``entry``'s fd itself: one epoll_wait per pass while it is alone."""
        self._move(entry, batched=False)
        if not entry.dead:  # its handle_error() may have closed it
            self.alone = entry

    def _batch(self, entry: _Entry) -> None:
        """Back into the batch with ``entry``'s fd (or it has left its map)."""
        self.alone = None
        if not entry.dead:
            self._move(entry, batched=True)

    def _move(self, entry: _Entry, batched: bool) -> None:
        """Watch ``entry``'s fd in the batch or with the loop, for what it wants now.

        A registration kept lazily (``_set_interest``) is not carried over.
        Registering can fail as a sweep's can (a socket closed behind the
        map's back): asyncore's rules decide then, as for the sweep.
        """
        r, w = entry.r, entry.w
        try:
            self._set_interest(entry, False, False, lazy=False)
            entry.batched = batched
            self._set_interest(entry, r, w)
        except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
            self._failed(entry, exc)

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

    r = reading = w = wakes = batched = False


_NOBODY: Any = _Nobody()
