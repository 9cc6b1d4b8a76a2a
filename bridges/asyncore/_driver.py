"""The asyncore driver: each dispatcher's fd registered with the loop, its events dispatched."""

from __future__ import annotations

import asyncio
import contextvars
import select
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import _state
from ._errors import AsyncoreBridgeError, AsyncoreTypeError, WrongThreadError
from ._readiness import Readiness, batches_on
from ._socketmap import SocketMap
from ._state import _DISCONNECTED, _OWNER, _describe, _unbound_maps
from ._sweep import Sweep
from ._takeover import TakeOver

if TYPE_CHECKING:
    from .._hub import Hub

# -- the driver ---------------------------------------------------------------


class _Entry:
    """One dispatcher's registration: what the loop currently watches for it."""

    __slots__ = (
        "batched",
        "context",
        "dead",
        "fd",
        "map",
        "obj",
        "on_read",
        "on_write",
        "r",
        "read_event",
        "reading",
        "w",
        "wakes",
        "watched",
        "write_event",
        "x",
    )

    def __init__(
        self,
        socket_map: Any,
        fd: int,
        obj: Any,
        watched: bool,
        dispatch: Callable[..., None],
        batched: bool,
    ) -> None:
        # Like an asyncio task, a dispatcher runs its handlers in a copy of the
        # context it was created in, whichever code later changes its interest.
        self.context = contextvars.copy_context()
        self.map = socket_map
        self.fd = fd
        self.obj = obj
        self.watched = watched
        # A trigger (waitress's, supervisor's): another thread makes it readable
        # after it changed other dispatchers' minds (a response waiting in a
        # channel's buffer), so its event is followed by a sweep at once.
        self.wakes = callable(getattr(obj, "pull_trigger", None))
        self.r = False
        """Whether the dispatcher is readable (as last asked)."""
        self.reading = False
        """Whether its fd is registered for reading: may stay True a while after
        ``r`` turned False (see ``_Driver._set_interest``)."""
        self.w = False
        self.x = False
        self.dead = False
        self.batched = batched
        """Whether its fd is watched in the driver's epoll set (``_readiness``), not by the loop."""
        # What each event dispatches, made once: the loop's callback argument,
        # and what the accounting meter names (no tuple built per event).
        self.read_event = (obj, "handle_read_event")
        self.write_event = (obj, "handle_write_event")
        # What a batch (``_readiness``) calls for each event: ``dispatch`` run
        # in the dispatcher's context, its arguments bound once.
        self.on_read = partial(self.context.run, dispatch, self, self.read_event)
        self.on_write = partial(self.context.run, dispatch, self, self.write_event)


class _Driver(Sweep, TakeOver, Readiness):
    """Per-hub state: the registered dispatchers, the interest sweep, the waiters."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.meter = None if hub.accounting is None else hub.accounting.meter_for(_OWNER)
        """asyncore's meter in the hub's accounting (None when off): brackets each handler."""
        self.detached = False
        self.interrupted = False
        self.entries: dict[int, _Entry] = {}
        self.wakers = 0
        """How many of the entries are triggers (``_Entry.wakes``)."""
        self.by_obj: dict[int, _Entry] = {}
        self.maps: dict[int, SocketMap] = {}
        self.watched: dict[int, dict[int, Any]] = {}
        self.synced: dict[int, dict[int, Any]] = {}
        """A copy of each plain dict map as last synced: one C-level comparison
        per event tells whether it changed, instead of an O(n) sync."""
        self.loop_waiters: dict[int, set[asyncio.Future[None]]] = {}
        self.closed_waiters: dict[int, set[asyncio.Future[None]]] = {}
        self.sweep_handle: asyncio.TimerHandle | None = None
        self.fresh: list[_Entry] = []
        self.fresh_handle: asyncio.Handle | None = None
        self.tick_handle: asyncio.TimerHandle | None = None
        self.next_sweep_at = 0.0
        """The loop time before which no sweep follows an event (``_sweep``)."""
        self.next_sweep_cpu = 0.0
        """The thread CPU time (``time.thread_time()``) before which none does..."""
        self.sweep_deadline = 0.0
        """... unless the loop time has reached this (see ``SWEEP_SHARE``)."""
        self.saved: list[tuple[ModuleType, Any, Any]] = []
        self.default_map: SocketMap | None = None
        # asyncio's selectors watch for reading and writing only; urgent data
        # (POLLPRI) and errors are what asyncore's third set is for.  A second
        # epoll set, watched by the loop like any fd, reports exactly those
        # without costing anything per ordinary event.
        self.expt_pending = False
        self.expt: Any = select.epoll() if hasattr(select, "epoll") else None
        if self.expt is not None:
            hub.add_reader(self.expt.fileno(), self._on_expt_ready, owner=_OWNER)
        self.ready = None
        self.lone_fd = -1
        self.lone_batches = 0
        self.alone = None
        self.poller = None
        """The epoll set of every dispatcher's fd (``_readiness``); None: one loop
        registration per fd."""
        if batches_on(self.loop):
            self._open_poller()

    # -- threads --

    def check_thread(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:
            raise WrongThreadError(
                "a socket map driven by the bridges hub was changed outside the hub's "
                "thread. Dispatchers of a running hub must be created and closed on it: "
                "hand the work to the hub with hub.loop.call_soon_threadsafe(...), or give "
                "dispatchers in other threads a map of their own (map={...})."
            )

    # -- maps --

    def bind(self, socket_map: SocketMap) -> None:
        socket_map._driver = self
        _unbound_maps.pop(id(socket_map), None)
        self.maps[id(socket_map)] = socket_map
        for fd, obj in list(socket_map._objs.items()):
            self.track(socket_map, fd, obj)

    def adopt(self, socket_map: Any) -> Any:
        """Make sure the hub drives ``socket_map``; returns the map to wait on."""
        if socket_map is None:
            return self.default_map
        if isinstance(socket_map, SocketMap):
            if socket_map._driver is None:
                self.bind(socket_map)
            elif socket_map._driver is not self:
                raise AsyncoreBridgeError(
                    f"{socket_map!r} is driven by another hub (in another thread). "
                    "Each map belongs to one hub; make a new SocketMap for this one."
                )
            return socket_map
        if isinstance(socket_map, dict):
            if id(socket_map) not in self.watched:
                self.watched[id(socket_map)] = socket_map
                self._sync(socket_map)
                self._arm_tick()
            return socket_map
        raise AsyncoreTypeError(
            f"bridges.asyncore: map must be None, a bridges.asyncore.SocketMap or a dict, "
            f"not {type(socket_map).__name__}. Pass the map your dispatchers were created "
            "with (map=...), or leave it out to use asyncore.socket_map."
        )

    # -- registrations --

    def track(self, socket_map: Any, fd: int, obj: Any, watched: bool = False) -> None:
        old = self.entries.get(fd)
        if old is not None:
            if old.obj is obj and old.map is socket_map:
                self._refresh(old)
                return
            self._drop(old)
        entry = _Entry(socket_map, fd, obj, watched, self._dispatch, self.poller is not None)
        self.wakers += entry.wakes
        self.entries[fd] = entry
        self.by_obj[id(obj)] = entry
        # asyncore first asks a new dispatcher readable()/writable() on the next
        # poll, not inside dispatcher.__init__ (where add_channel runs before a
        # subclass has set the attributes those methods read): so do we.
        self.fresh.append(entry)
        if self.fresh_handle is None and not self.detached:
            self.fresh_handle = self.loop.call_soon(self._welcome)
        self._arm_tick()

    def _welcome(self) -> None:
        self.fresh_handle = None
        fresh, self.fresh = self.fresh, []
        for entry in fresh:
            if not entry.dead:
                self._refresh(entry)

    def untrack(self, socket_map: Any, fd: int, obj: Any) -> None:
        entry = self.entries.get(fd)
        if entry is not None and entry.obj is obj:
            self._drop(entry)
        if not socket_map:
            self._map_emptied(socket_map)

    def _drop(self, entry: _Entry) -> None:
        if not entry.dead:
            self.wakers -= entry.wakes
        entry.dead = True
        fd = entry.fd
        if self.entries.get(fd) is entry:
            del self.entries[fd]
        if self.by_obj.get(id(entry.obj)) is entry:
            del self.by_obj[id(entry.obj)]
        self._set_interest(entry, False, False, lazy=False)
        if self.alone is entry:
            self.alone = None
        if self.ready:
            self._forget_ready(fd)
        waiters = self.closed_waiters.pop(id(entry.obj), None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _set_interest(self, entry: _Entry, r: bool, w: bool, lazy: bool = True) -> None:
        """Register what the dispatcher wants with the loop.

        A dispatcher that stops being readable keeps its read registration
        (``lazy``) until a read event arrives while it is not readable: the
        usual request/response cycle (waitress's channel is not readable while
        its request is served) then costs no ``epoll_ctl`` for reading, a
        system call that also gives up the GIL to worker threads.
        """
        if self.interrupted:
            r = w = False
            lazy = False
        entry.r = r
        reading = r if r or not lazy else entry.reading
        if reading is not entry.reading or w is not entry.w:
            if entry.batched:
                self._poll_for(entry, reading, w)
            else:
                self._register_with_loop(entry, reading, w)
            entry.reading = reading
            entry.w = w
        x = entry.reading or w
        if x is not entry.x and self.expt is not None:
            # asyncore looks for exceptional conditions only on fds it watches
            # for reading or writing; so do we.
            entry.x = x
            try:
                if x:
                    self.expt.register(entry.fd, select.EPOLLPRI)
                else:
                    self.expt.unregister(entry.fd)
            except OSError:
                if x:  # a socket closed behind the map's back: asyncore's select() fails too
                    raise
            except ValueError:  # the epoll set is closed: the hub has detached
                pass

    def _register_with_loop(self, entry: _Entry, reading: bool, writing: bool) -> None:
        """Where there is no epoll set: the fd's reader and writer are the loop's."""
        hub = self.hub
        if reading is not entry.reading:
            self._loop_watches(entry, reading, hub.add_reader, hub.remove_reader, entry.read_event)
            entry.reading = reading
        if writing is not entry.w:
            self._loop_watches(entry, writing, hub.add_writer, hub.remove_writer, entry.write_event)

    def _loop_watches(
        self,
        entry: _Entry,
        wanted: bool,
        add: Callable[..., None],
        remove: Callable[..., bool],
        event: tuple[Any, str],
    ) -> None:
        if wanted:
            add(entry.fd, entry.context.run, self._dispatch, entry, event, True, owner=_OWNER)
        else:
            remove(entry.fd, owner=_OWNER)

    def _refresh(self, entry: _Entry) -> None:
        self._refresh_all((entry,))

    def _refresh_all(self, entries: Iterable[_Entry]) -> None:
        """Ask each live dispatcher ``readable()``/``writable()`` again and follow its answers.

        One frame for a whole sweep, not one per dispatcher (``_dispatch``
        spells the same out for the dispatcher that had the event).
        """
        interrupted = self.interrupted
        for entry in entries:
            if entry.dead:
                continue
            obj = entry.obj
            try:
                r = bool(obj.readable())
                w = bool(obj.writable()) and not obj.accepting
                if r is not entry.r or w is not entry.w:
                    if w is entry.w and (entry.reading or not r) and not interrupted:
                        entry.r = r  # the registrations stay as they are (see _set_interest)
                    else:
                        self._set_interest(entry, r, w)
            except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
                self._failed(entry, exc)
                interrupted = self.interrupted

    # -- events --

    def _dispatch(self, entry: _Entry, event: tuple[Any, str], alone: bool = False) -> None:
        """Run one dispatcher's handler for ``event``, then ask it what it wants next.

        Runs in the dispatcher's context.  ``alone``: the loop's own reader or
        writer callback for the fd (``entry.context.run`` with this method,
        ``event`` -- ``entry.read_event`` or ``entry.write_event`` -- and
        True), which checks that the dispatcher wants the event and follows
        it with the interest sweep; a batch (``_readiness``) does both once
        for all its events.  An ordinary event costs this one frame and the
        handler's own calls.
        """
        if alone and not entry.r and event is entry.read_event and self._read_unwanted(entry):
            return
        if entry.watched and entry.map.get(entry.fd) is not entry.obj:
            self._sync(entry.map)  # a plain dict changed behind our back
            if alone:
                self._event_done(entry)
            return
        obj = entry.obj
        meter = self.meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(event)
        try:
            try:
                if event is entry.read_event:
                    obj.handle_read_event()
                else:
                    obj.handle_write_event()
            except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
                self._failed(entry, exc)
                if not entry.dead:
                    self._refresh(entry)
            else:
                if not entry.dead:
                    # _refresh_all((entry,)), spelled out: one frame less on every event.
                    try:
                        # `not not`: the answer's truth as a bool, without a call of bool().
                        r = not not obj.readable()  # noqa: SIM208
                        w = not not obj.writable() and not obj.accepting  # noqa: SIM208
                        if r is not entry.r or w is not entry.w:
                            if w is entry.w and (entry.reading or not r) and not self.interrupted:
                                entry.r = r  # the registrations stay as they are
                            else:
                                self._set_interest(entry, r, w)
                    except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
                        self._failed(entry, exc)
        finally:
            if outer is not None:
                meter.exit(outer)
        if alone:
            # _event_done(entry), spelled out: one frame less on every event.
            if entry.wakes:
                self._sweep()
            elif self.sweep_handle is None:
                self._after_event()

    def _event_done(self, entry: _Entry) -> None:
        """After its own event: a sweep at once for a trigger, when due for others."""
        if entry.wakes:
            self._sweep()
        elif self.sweep_handle is None:
            self._after_event()

    def _read_unwanted(self, entry: _Entry) -> bool:
        """A read event on a lazily kept registration (``_set_interest``): does it still not read?

        Asks again (its mind may have changed since), and unregisters now if
        it still does not want to read.
        """
        self._refresh(entry)
        if entry.dead:
            return True
        if not entry.r:
            self._set_interest(entry, False, entry.w, lazy=False)
            return True
        return False

    def _on_expt_ready(self) -> None:
        # Handle exceptional conditions after the read and write handlers of
        # this pass, as asyncore.poll2 does (read, write, then expt and close):
        # a read that meets the error (recv -> ECONNRESET) takes precedence, and
        # a failed connect reaches handle_connect_event -> handle_error as in asyncore.
        if not self.expt_pending:
            self.expt_pending = True
            self.loop.call_soon(self._process_expt)

    def _process_expt(self) -> None:
        self.expt_pending = False
        if self.expt is None:
            return
        for fd, flags in self.expt.poll(0):
            entry = self.entries.get(fd)
            if entry is None or entry.dead or not (entry.r or entry.w):
                continue
            if getattr(entry.obj, "connecting", False):
                continue  # the write event's handle_connect_event reads SO_ERROR, as in asyncore
            entry.context.run(self._expt, entry, flags)
        if self.sweep_handle is None:
            self._after_event()

    def _expt(self, entry: _Entry, flags: int) -> None:
        try:
            if flags & (select.EPOLLPRI | select.EPOLLERR):
                entry.obj.handle_expt_event()
            elif flags & select.EPOLLHUP:
                entry.obj.handle_close()
        except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
            self._failed(entry, exc)
        if not entry.dead:
            self._refresh(entry)

    def _failed(self, entry: _Entry, exc: BaseException) -> None:
        """asyncore.readwrite's rules; called inside the ``except`` block, so
        ``handle_error()`` sees the exception in ``sys.exc_info()`` as it expects."""
        if isinstance(exc, OSError):
            if exc.errno in _DISCONNECTED:
                self._guarded(entry, "handle_close")
            else:
                self._guarded(entry, "handle_error")
        elif isinstance(exc, _state._exit_now):
            self._exit_now(entry, exc)
        elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self._interrupted()
            raise exc
        else:
            self._guarded(entry, "handle_error")

    def _interrupted(self) -> None:
        """KeyboardInterrupt or SystemExit is leaving the loop: stop dispatching.

        The loop is going down, as ``asyncore.loop()`` would.  The hub still runs
        the loop to stop (cancel tasks, close dispatchers); a handler that raised
        on an event still pending would raise again on every pass of that and
        the stop sequence would never run.
        """
        self.interrupted = True
        for entry in list(self.entries.values()):
            self._set_interest(entry, False, False, lazy=False)

    def _guarded(self, entry: _Entry, name: str) -> None:
        # In asyncore an exception from handle_error()/handle_close() escapes
        # loop(); on the hub nothing may stop the loop for other frameworks,
        # so it is reported instead.
        obj = entry.obj
        try:
            getattr(obj, name)()
        except _state._exit_now as exc:
            self._exit_now(entry, exc)
        except (KeyboardInterrupt, SystemExit):
            self._interrupted()
            raise
        except BaseException as exc:  # noqa: BLE001 - reported, never lost
            self.hub.report(
                exc,
                f"bridges.asyncore: {_describe(obj)}.{name}() raised; the dispatcher stays in "
                "its map. Fix that handler (asyncore would have stopped its loop here).",
                dispatcher=obj,
            )

    def _exit_now(self, entry: _Entry, exc: BaseException) -> None:
        waiters = self.loop_waiters.pop(id(entry.map), None)
        pending = [fut for fut in waiters or () if not fut.done()]
        for fut in pending:
            fut.set_exception(exc)
        if not pending:
            self.hub.report(
                exc,
                f"bridges.asyncore: {_describe(entry.obj)} raised ExitNow, but no "
                "`await bridges.asyncore.loop()` waits on its map to receive it; the "
                "dispatchers keep running on the hub. Await loop(map=...) to be told, or "
                "close the dispatchers to stop them.",
                dispatcher=entry.obj,
            )

    # -- the interest sweep --
