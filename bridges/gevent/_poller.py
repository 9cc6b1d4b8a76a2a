"""The fd poller of the gevent loop: many gevent watchers per fd, one registration."""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Any, Callable, Iterator

from .._epoll import set_interest
from ._compat import original_attr as _original
from ._watchers import (
    _BOUND_PRUNE,
    _EPOLL_MASK_OF_EVENTS,
    _EV_ERROR,
    _READ,
    _UNBOUND,
    _WRITE,
    OWNER,
    _FdEntry,
    _Io,
)

_UNBOUND_PRUNE = 64


class FdPoller:
    """gevent's io watchers on a private epoll (or asyncio's readers), a mixin of AsyncioLoop."""

    _unbound_limit = _UNBOUND_PRUNE

    # -- io: many gevent watchers per fd, registered lazily -----------------

    def _io_start(self, watcher: _Io) -> None:
        """The slow path of ``_Io.start``: bind the watcher, register what is missing."""
        if watcher.fd in self._closing:
            # The fd is closed at the end of this pass.  Registering it now
            # would be dropped by the kernel at that close, silently; libev
            # registers at its next poll and so reports the closed fd to the
            # watcher (gevent's select.poll turns that into POLLNVAL).
            if watcher not in self._deferred:
                self._deferred.append(watcher)
            if not self._draining:
                self._schedule_pass()
            return
        try:
            self._bind_and_register(watcher)
        except BaseException:
            watcher.stop()
            entry = self._fds.get(watcher.fd)
            if entry is not None and not entry.mask and not self._waited_on(entry):
                self._forget(watcher.fd, entry)
            raise

    def _bind_and_register(self, watcher: _Io) -> None:
        fd = watcher.fd
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._fds[fd] = _FdEntry()
        if watcher._entry is not entry:
            self._bind(watcher, entry)
        missing = watcher.events & ~entry.mask
        if missing:
            self._register(fd, entry, missing)

    def _register_deferred(self) -> None:
        """After the pass that closed the fds in ``_closing``: register what waited for it."""
        self._closing.clear()
        deferred, self._deferred = self._deferred, []
        for watcher in deferred:
            if not watcher._active:
                continue
            try:
                self._bind_and_register(watcher)
            except OSError:
                # libev's answer to an fd the poller refuses: the watcher
                # fires with EV_ERROR, and the greenlet's next call sees why.
                self._keep_unbound(watcher)
                watcher._revents |= _EV_ERROR | watcher.events
                self._queue_fire(watcher)
                self._schedule_pass()

    def _bind(self, watcher: _Io, entry: _FdEntry) -> None:
        if not self._waited_on(entry):
            # Nobody waits on this fd: if it was closed without closing_fd()
            # and its number reused, the registration we kept points at the
            # old file, which epoll has already forgotten.  Register afresh,
            # and let go of the watchers bound so far.
            self._unregister(watcher.fd, entry)
            self._unbind_all(entry)
        elif len(entry.watchers) >= _BOUND_PRUNE:
            # A watcher per wait (gevent.socket.wait_read) beside one that
            # always waits: drop the stopped ones rather than keep them all.
            kept = []
            for bound in entry.watchers:
                if bound._active:
                    kept.append(bound)
                else:
                    bound._entry = _UNBOUND
            entry.watchers = kept
        entry.watchers.append(watcher)
        entry.sole = watcher if len(entry.watchers) == 1 else None
        watcher._entry = entry

    def _referenced_ios(self) -> Iterator[_Io]:
        """The started io watchers that keep the loop alive (``ref``), each once.

        ``_Io.start``/``stop`` leave the loop's count alone (they run on
        every wait); this finds them where they are: bound to an fd's entry,
        waiting for a closing fd to be closed (``_deferred``), or started
        but bound to nothing since their fd was closed (``_unbound``).
        """
        for entry in self._fds.values():
            for watcher in entry.watchers:
                if watcher._active and watcher._ref:
                    yield watcher
        self._prune_unbound()
        seen = set()
        for watcher in (*self._deferred, *self._unbound):
            if (
                watcher._active
                and watcher._ref
                and watcher._entry is _UNBOUND
                and watcher not in seen
            ):
                seen.add(watcher)
                yield watcher

    def _keep_unbound(self, watcher: _Io) -> None:
        """Remember a watcher left started when its fd went away (see _referenced_ios)."""
        self._unbound.append(watcher)
        if len(self._unbound) > self._unbound_limit:
            # Usually stopped by their greenlets since: prune when doubled.
            self._prune_unbound()
            self._unbound_limit = max(_UNBOUND_PRUNE, 2 * len(self._unbound))

    def _prune_unbound(self) -> None:
        self._unbound = [w for w in self._unbound if w._active and w._entry is _UNBOUND]

    @staticmethod
    def _waited_on(entry: _FdEntry) -> bool:
        return any(watcher._active for watcher in entry.watchers)

    @staticmethod
    def _unbind_all(entry: _FdEntry) -> list[_Io]:
        """Unbind ``entry``'s watchers; return them."""
        watchers, entry.watchers = entry.watchers, []
        entry.sole = None
        for watcher in watchers:
            watcher._entry = _UNBOUND
        return watchers

    def _forget(self, fd: int, entry: _FdEntry) -> None:
        if self._fds.get(fd) is entry:
            del self._fds[fd]
        self._unbind_all(entry)

    def _register(self, fd: int, entry: _FdEntry, events: int) -> None:
        if self._epoll is not None:
            before = entry.mask
            entry.set_mask(before | events)
            try:
                self._epoll_sync(fd, entry)
            except BaseException:
                entry.set_mask(before)
                raise
            return
        for event in (_READ, _WRITE):
            if events & event:
                self._add(fd, event)
                entry.set_mask(entry.mask | event)

    def _add(self, fd: int, event: int) -> None:
        registry = self._fd_registry
        read = event == _READ
        try:
            if registry is not None:
                (registry.add_reader if read else registry.add_writer)(
                    fd, self._io_ready, fd, event, owner=OWNER
                )
            else:
                (self._aio.add_reader if read else self._aio.add_writer)(
                    fd, self._io_ready, fd, event
                )
        except ValueError as exc:
            # asyncio refuses a closed fd with ValueError; gevent expects EBADF.
            raise OSError(errno.EBADF, f"bad file descriptor {fd}: {exc}") from exc

    def _remove(self, fd: int, event: int) -> None:
        registry = self._fd_registry
        if self._aio.is_closed():
            return
        read = event == _READ
        if registry is not None:
            (registry.remove_reader if read else registry.remove_writer)(fd, owner=OWNER)
        else:
            (self._aio.remove_reader if read else self._aio.remove_writer)(fd)

    def _unregister(self, fd: int, entry: _FdEntry, events: int = _READ | _WRITE) -> None:
        """Drop ``events`` from ``fd``'s registration."""
        dropped = entry.mask & events
        entry.set_mask(entry.mask & ~events)
        if self._epoll is not None:
            self._epoll_sync(fd, entry)
            return
        for event in (_READ, _WRITE):
            if dropped & event:
                self._remove(fd, event)

    def _drop_idle_registration(self, fd: int, entry: _FdEntry, events: int) -> None:
        self._unregister(fd, entry, events)
        if not entry.mask and not self._waited_on(entry):
            self._forget(fd, entry)

    @staticmethod
    def _make_pending(entry: _FdEntry, event: int, add: Callable[[_Io], None]) -> int:
        """``add`` the started watchers waiting for ``event``; return the events they want."""
        wanted = 0
        for watcher in entry.watchers:
            got = watcher.events & event
            if got and watcher._active:
                wanted |= got
                if watcher._pass_events:
                    watcher._revents |= got
                if not watcher._queued:
                    watcher._queued = True
                    add(watcher)
        return wanted

    # asyncio as the poller (where there is no epoll): one reader/writer per fd.

    def _io_ready(self, fd: int, event: int) -> None:
        """asyncio reader/writer callback: queue the gevent watchers waiting for ``event``."""
        entry = self._fds.get(fd)
        if entry is None:
            return
        if not self._make_pending(entry, event, self._queue.append):
            self._drop_idle_registration(fd, entry, event)
        elif not self._pass_scheduled:
            # One pass per loop iteration serves every fd that became ready
            # in it, instead of a switch into the hub per fd.
            self._pass_scheduled = True
            self._aio.call_soon(self._enter)

    # A private epoll whose own fd asyncio watches: one asyncio callback per
    # loop iteration however many gevent fds are ready, and registrations in C
    # instead of asyncio's per-fd Python bookkeeping (see docs/gevent.md).

    def _epoll_sync(self, fd: int, entry: _FdEntry) -> None:
        mask = _EPOLL_MASK_OF_EVENTS[entry.mask]
        epoll = self._epoll
        if not mask:
            if entry.in_epoll:
                entry.in_epoll = False
                with contextlib.suppress(OSError):
                    epoll.unregister(fd)
            return
        if not self._epoll_watched:
            self._watch_epoll()
        set_interest(epoll, fd, mask, entry.in_epoll)
        entry.in_epoll = True

    def _watch_epoll(self) -> None:
        epfd = self._epoll.fileno()
        if self._fd_registry is not None:
            self._fd_registry.add_reader(epfd, self._epoll_ready, owner=OWNER)
        else:
            self._aio.add_reader(epfd, self._epoll_ready)
        self._epoll_watched = True

    def _unwatch_epoll(self) -> None:
        if self._epoll_watched and not self._aio.is_closed():
            epfd = self._epoll.fileno()
            if self._fd_registry is not None:
                self._fd_registry.remove_reader(epfd, owner=OWNER)
            else:
                self._aio.remove_reader(epfd)
        self._epoll_watched = False

    def _renew_epoll(self) -> None:
        """In a forked child: a private epoll of its own, with the registrations kept."""
        if self._epoll is None:
            return
        self._unwatch_epoll()
        self._epoll.close()
        self._epoll = new_epoll()
        for fd, entry in self._fds.items():
            entry.in_epoll = False
            try:
                self._epoll_sync(fd, entry)
            except OSError:
                entry.set_mask(0)  # closed since; a new start registers afresh

    def _epoll_ready(self) -> None:
        """asyncio reader callback on the private epoll: let the hub poll it."""
        self._poll_due = True
        self._enter_now()

    def _poll_fds(self) -> int:
        """Fire the watchers of the fds the private epoll reports ready; return how many fds.

        As libev does, the started watchers of every ready fd are first made
        pending (collected), then fired.  With nothing else queued (the usual
        case: the pass has drained its queue and polls again) they are fired
        right here, sparing each of them a trip through the queue; otherwise
        they queue behind what is there, in libev's order.
        """
        self._poll_due = False
        ready = self._epoll.poll(0)
        if not ready:
            return 0
        fds = self._fds
        due: list[_Io] = []
        add = due.append
        for fd, mask in ready:
            try:
                entry = fds[fd]
            except KeyError:
                with contextlib.suppress(OSError):
                    self._epoll.unregister(fd)
                continue
            # Only bits of _EPOLL_REPORTED come back for our registrations.
            event = entry.events_of[mask]
            watcher = entry.sole
            if watcher is None:
                wanted = self._make_pending(entry, event, add)
            elif watcher._active:
                # _make_pending for the one watcher, inline: the usual case.
                wanted = watcher.events & event
                if wanted:
                    if watcher._pass_events:
                        watcher._revents |= wanted
                    if not watcher._queued:
                        watcher._queued = True
                        add(watcher)
            else:
                wanted = 0
            if wanted != event:
                self._drop_idle_registration(fd, entry, event & ~wanted)
        if self._queue:
            self._queue.extend(due)
        else:
            self._fire_due(due)
        return len(ready)

    def _fire_due(self, due: list[_Io]) -> None:
        """Fire the io watchers ``_poll_fds`` made pending (``_Io._fire``, inline)."""
        for watcher in due:
            try:
                if watcher._pass_events:
                    watcher._fire()
                    continue
                watcher._queued = False
                callback = watcher._callback
                if callback is not None and watcher._active:
                    callback(*(watcher._args or ()))
            except BaseException:  # noqa: BLE001 - nothing may escape the hub greenlet
                # The rest stay pending: they go to the queue if the hub unwinds.
                rest = due[due.index(watcher) + 1 :]
                try:
                    self._callback_failed(watcher)
                except BaseException:
                    self._queue.extend(rest)
                    raise
                if self._unwinding is not None:
                    self._queue.extend(rest)
                    return


def new_epoll() -> Any:
    """The private epoll for gevent's fds, or None to register each fd with asyncio.

    ``BRIDGES_GEVENT_POLLER=asyncio`` chooses the latter (also the only way
    where there is no epoll); benchmarks/bench_gevent.py compares the two.
    """
    if os.environ.get("BRIDGES_GEVENT_POLLER", "epoll") == "asyncio":
        return None
    try:
        epoll_class = _original("select", "epoll")
    except AttributeError:
        return None
    return epoll_class()
