"""asyncore and asynchat dispatchers on the hub.

asyncore's own ``loop()`` asks every dispatcher ``readable()``/``writable()``
on each pass and hands all of their fds to ``select`` or ``poll``: its cost
per event grows with the number of connections, idle or not, and it blocks
the thread.  On the hub each dispatcher's fd is registered with the asyncio
loop instead, through the hub's fd registry, and only the dispatcher that had
an event is asked again.  The dispatchers keep asyncore's rules:

* a read event calls ``handle_read_event()``, a write event
  ``handle_write_event()`` (which do accept/connect/read/write exactly as
  asyncore's do); an exceptional condition (urgent data, a socket error)
  calls ``handle_expt_event()``, which reads ``SO_ERROR`` and closes on an
  error; a hang-up calls ``handle_close()`` (as ``asyncore.poll2`` does);
* ``OSError`` with a disconnect errno goes to ``handle_close()``, every other
  exception to ``handle_error()`` (as ``asyncore.readwrite`` does);
* ``ExitNow`` ends the ``await loop()`` calls waiting on that dispatcher's
  map, with that exception (asyncore's ``loop()`` raises it to its caller);
  with nobody waiting it is reported through the hub's error sink.
  ``KeyboardInterrupt`` and ``SystemExit`` propagate out of the event loop,
  as they do from any asyncio callback, and the hub stops dispatching
  asyncore events so that its stop sequence can run.

Like an asyncio task, each dispatcher runs its handlers in a copy of the
``contextvars`` context it was created in.

Interest is re-evaluated right after each handler of a dispatcher runs, and
for every dispatcher once per loop pass in which any handler ran (a handler
may change another dispatcher's mind: asynchat's ``push``, waitress's
trigger).  That sweep is the one cost that grows with the number of
dispatchers, so it is coalesced: it takes at most :data:`SWEEP_SHARE` of the
time, and runs at least every :data:`SWEEP_INTERVAL` seconds when nothing
happens (for ``readable()`` that changes with the clock).  See
docs/asyncore.md for the figures.

The default map (``asyncore.socket_map``) is a hub-owned :class:`SocketMap`
while the hub runs; pass ``map=SocketMap()`` for a map of your own, or any
plain dict (driven too, but at asyncore's O(connections) cost per pass).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import select
import warnings
import weakref
from collections.abc import MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional

from .. import _errors
from .._convert import register
from .._errors import BridgeError, FrameworkNotInstalledError, HubNotRunningError
from .._hub import current_hub

if TYPE_CHECKING:
    from .._hub import Hub

with warnings.catch_warnings():
    # Python 3.10 and 3.11 warn that asyncore is deprecated; the user chose it
    # by attaching this adapter, and the warning would otherwise surface in
    # every run that attaches frameworks="auto".
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*asyncore")
    try:
        import asyncore
    except ImportError:  # pragma: no cover - depends on the environment
        raise FrameworkNotInstalledError(
            "bridges.asyncore needs the asyncore module, which left the standard library "
            "in Python 3.12. Install it with: pip install 'tulip-bridges[asyncore]' "
            "(pyasyncore and pyasynchat)."
        ) from None

__all__ = [
    "SWEEP_INTERVAL",
    "SWEEP_SHARE",
    "AsyncoreBridgeError",
    "AsyncoreTypeError",
    "HubOwnsLoopError",
    "NotAttachedError",
    "SocketMap",
    "WrongThreadError",
    "closed",
    "dispatchers",
    "install",
    "loop",
    "refresh",
]

SWEEP_INTERVAL = 0.05
"""Seconds between interest sweeps when no dispatcher had an event."""

SWEEP_SHARE = 0.02
"""The largest share of the hub's time that interest sweeps may take.

After a sweep that took ``c`` seconds the next one waits at least
``c * (1 / SWEEP_SHARE - 1)``: with 1,000 dispatchers (a sweep of 0.2-0.4
ms) a change of mind without an event is seen within about 10-20 ms; with
100, within about 1-2 ms; with a few, on the same loop pass."""

_OWNER = "bridges.asyncore"

# asyncore's own list (asyncore._DISCONNECTED), spelled out because it is private.
_DISCONNECTED = frozenset(
    {
        errno.ECONNRESET,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EBADF,
    }
)

# Modules with asyncore's interface whose socket_map and loop() the hub takes
# over while it runs: asyncore itself, plus what install() adds.  Those named
# in _KNOWN_FLAVORS are taken over too when they are already imported.
_flavors: list[ModuleType] = [asyncore]
_KNOWN_FLAVORS = ("waitress.wasyncore", "supervisor.medusa.asyncore_25")
_exit_now: tuple[type[BaseException], ...] = (asyncore.ExitNow,)
# SocketMaps no hub drives yet, by id (a mapping is unhashable): the next hub adopts them.
_originals: dict[ModuleType, tuple[Any, Any]] = {}
"""Each taken-over module's own socket_map and loop, as found before the first hub."""
_unbound_maps: weakref.WeakValueDictionary[int, SocketMap] = weakref.WeakValueDictionary()


class AsyncoreBridgeError(BridgeError):
    """Base of the errors specific to asyncore on the hub."""


class AsyncoreTypeError(AsyncoreBridgeError, TypeError):
    """An asyncore helper was given an object of the wrong kind (a map, a module)."""


class HubOwnsLoopError(AsyncoreBridgeError, _errors.HubOwnsLoopError):
    """Legacy code called the blocking ``asyncore.loop()`` inside the hub."""


class WrongThreadError(AsyncoreBridgeError, RuntimeError):
    """A hub-driven socket map was changed from a thread other than the hub's."""


class NotAttachedError(AsyncoreBridgeError, _errors.NotAttachedError):
    """An asyncore helper was used on a hub that does not have asyncore attached."""


# -- the socket map -----------------------------------------------------------


class SocketMap(MutableMapping):  # type: ignore[type-arg]
    """A socket map (``{fd: dispatcher}``) whose dispatchers the hub drives.

    Use it wherever asyncore takes ``map=``.  Adding a dispatcher registers
    its fd with the hub's loop and removing it unregisters it, so the hub
    never has to scan the map.  A map made where no hub runs holds its
    dispatchers until a hub adopts it (at attach, or through
    ``await loop(map=...)`` / ``await closed(...)``).  While the hub runs,
    ``asyncore.socket_map`` is one of these.
    """

    def __init__(self, items: Mapping[int, Any] | None = None) -> None:
        self._objs: dict[int, Any] = {}
        self._driver: _Driver | None = None
        _unbound_maps[id(self)] = self
        if items:
            self.update(items)

    def __getitem__(self, fd: int) -> Any:
        return self._objs[fd]

    def get(self, fd: int, default: Any = None) -> Any:
        return self._objs.get(fd, default)

    def __contains__(self, fd: object) -> bool:
        return fd in self._objs

    def __iter__(self) -> Iterator[int]:
        return iter(self._objs)

    def __len__(self) -> int:
        return len(self._objs)

    def __setitem__(self, fd: int, obj: Any) -> None:
        driver = self._driver
        if driver is None:
            driver = _adopting_driver(self)
        if driver is not None:
            driver.check_thread()
        self._objs[fd] = obj
        if driver is not None:
            driver.track(self, fd, obj)

    def __delitem__(self, fd: int) -> None:
        driver = self._driver
        if driver is not None:
            driver.check_thread()
        obj = self._objs.pop(fd)
        if driver is not None:
            driver.untrack(self, fd, obj)

    def copy(self) -> dict[int, Any]:
        """A plain dict snapshot, as ``dict.copy()`` gives code written for a dict map."""
        return dict(self._objs)

    def __repr__(self) -> str:
        state = "driven" if self._driver is not None else "not driven"
        return f"<bridges.asyncore.SocketMap {state} fds={sorted(self._objs)}>"


def _adopting_driver(socket_map: SocketMap) -> _Driver | None:
    """The driver of the hub running here, if it has asyncore attached: it adopts the map."""
    try:
        hub = current_hub()
    except HubNotRunningError:
        return None
    adapter = hub.adapter("asyncore")
    if not isinstance(adapter, AsyncoreAdapter) or adapter.driver.detached:
        return None
    adapter.driver.bind(socket_map)
    return adapter.driver


def _map_of(dispatcher: Any) -> Any:
    """The map a dispatcher put itself in.

    ``dispatcher._map`` is private to asyncore; checked on stdlib asyncore
    (Python 3.9-3.11), pyasyncore 1.0.x and waitress's wasyncore 2.x-3.0
    (tests/test_asyncore.py::test_dispatchers_still_keep_their_map_in_the_private_map_attribute).
    """
    return getattr(dispatcher, "_map", None)


def _set_map_of(dispatcher: Any, socket_map: Any) -> None:
    """Point a dispatcher at the map it was moved to (see :func:`_map_of`)."""
    if hasattr(dispatcher, "_map"):
        dispatcher._map = socket_map


# -- the driver ---------------------------------------------------------------


class _Entry:
    """One dispatcher's registration: what the loop currently watches for it."""

    __slots__ = ("context", "dead", "fd", "map", "obj", "r", "w", "watched", "x")

    def __init__(self, socket_map: Any, fd: int, obj: Any, watched: bool) -> None:
        # Like an asyncio task, a dispatcher runs its handlers in a copy of the
        # context it was created in, whichever code later changes its interest.
        self.context = contextvars.copy_context()
        self.map = socket_map
        self.fd = fd
        self.obj = obj
        self.watched = watched
        self.r = False
        self.w = False
        self.x = False
        self.dead = False


class _Driver:
    """Per-hub state: the registered dispatchers, the interest sweep, the waiters."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.detached = False
        self.interrupted = False
        self.entries: dict[int, _Entry] = {}
        self.by_obj: dict[int, _Entry] = {}
        self.maps: dict[int, SocketMap] = {}
        self.watched: dict[int, dict[int, Any]] = {}
        self.loop_waiters: dict[int, set[asyncio.Future[None]]] = {}
        self.closed_waiters: dict[int, set[asyncio.Future[None]]] = {}
        self.sweep_handle: asyncio.TimerHandle | None = None
        self.fresh: list[_Entry] = []
        self.fresh_handle: asyncio.Handle | None = None
        self.tick_handle: asyncio.TimerHandle | None = None
        self.next_sweep_at = 0.0
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
        entry = _Entry(socket_map, fd, obj, watched)
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
        entry.dead = True
        fd = entry.fd
        if self.entries.get(fd) is entry:
            del self.entries[fd]
        if self.by_obj.get(id(entry.obj)) is entry:
            del self.by_obj[id(entry.obj)]
        self._set_interest(entry, False, False)
        waiters = self.closed_waiters.pop(id(entry.obj), None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _set_interest(self, entry: _Entry, r: bool, w: bool) -> None:
        if self.interrupted:
            r = w = False
        hub, fd = self.hub, entry.fd
        if r is not entry.r:
            if r:
                hub.add_reader(fd, self._on_read, entry, owner=_OWNER)
            else:
                hub.remove_reader(fd, owner=_OWNER)
            entry.r = r
        if w is not entry.w:
            if w:
                hub.add_writer(fd, self._on_write, entry, owner=_OWNER)
            else:
                hub.remove_writer(fd, owner=_OWNER)
            entry.w = w
        x = r or w
        if x is not entry.x and self.expt is not None:
            # asyncore looks for exceptional conditions only on fds it watches
            # for reading or writing; so do we.
            entry.x = x
            try:
                if x:
                    self.expt.register(fd, select.EPOLLPRI)
                else:
                    self.expt.unregister(fd)
            except OSError:
                if x:  # a socket closed behind the map's back: asyncore's select() fails too
                    raise
            except ValueError:  # the epoll set is closed: the hub has detached
                pass

    def _refresh(self, entry: _Entry) -> None:
        obj = entry.obj
        try:
            r = bool(obj.readable())
            w = bool(obj.writable()) and not obj.accepting
            if r is not entry.r or w is not entry.w:
                self._set_interest(entry, r, w)
        except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
            self._failed(entry, exc)

    # -- events --

    def _on_read(self, entry: _Entry) -> None:
        self._on_event(entry, "handle_read_event")

    def _on_write(self, entry: _Entry) -> None:
        self._on_event(entry, "handle_write_event")

    def _on_event(self, entry: _Entry, handler: str) -> None:
        if entry.watched and entry.map.get(entry.fd) is not entry.obj:
            self._sync(entry.map)  # a plain dict changed behind our back
            return
        entry.context.run(self._handle, entry, handler)
        if self.sweep_handle is None:
            self._after_event()

    def _handle(self, entry: _Entry, handler: str) -> None:
        try:
            getattr(entry.obj, handler)()
        except BaseException as exc:  # noqa: BLE001 - asyncore's rules decide
            self._failed(entry, exc)
        if not entry.dead:
            self._refresh(entry)

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
            if entry is None or entry.dead:
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
        elif isinstance(exc, _exit_now):
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
            self._set_interest(entry, False, False)

    def _guarded(self, entry: _Entry, name: str) -> None:
        # In asyncore an exception from handle_error()/handle_close() escapes
        # loop(); on the hub nothing may stop the loop for other frameworks,
        # so it is reported instead.
        obj = entry.obj
        try:
            getattr(obj, name)()
        except _exit_now as exc:
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

    def _after_event(self) -> None:
        """A handler ran: sweep now if the budget allows, else as soon as it does."""
        if self.detached:
            return
        if self.watched or self.loop.time() >= self.next_sweep_at:
            self._sweep()
        else:
            self.sweep_handle = self.loop.call_at(self.next_sweep_at, self._sweep)

    def _sweep(self) -> None:
        handle = self.sweep_handle
        if handle is not None:
            handle.cancel()
            self.sweep_handle = None
        clock = self.loop.time
        started = clock()
        if self.watched:
            for socket_map in list(self.watched.values()):
                self._sync(socket_map)
        refresh = self._refresh
        for entry in list(self.entries.values()):
            if not entry.dead:
                refresh(entry)
        ended = clock()
        self.next_sweep_at = ended + (ended - started) * (1.0 / SWEEP_SHARE - 1.0)

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

    def take_over(self) -> None:
        self.default_map = SocketMap()
        self.bind(self.default_map)
        for module in _flavors:
            self._take_over(module)
        for socket_map in list(_unbound_maps.values()):
            if socket_map:
                self.bind(socket_map)

    def _take_over(self, module: ModuleType) -> None:
        current = module.socket_map
        if isinstance(current, SocketMap):
            # A hub whose loop was closed before its stop sequence finished (a
            # second Ctrl-C while stopping) never gave the module back: recover
            # the originals, or no later hub could start.
            original_map, original_loop = _originals[module]
            leftovers = list(current._objs.items())
            current._objs.clear()
            current._driver = None
        else:
            original_map, original_loop = current, module.loop
            _originals[module] = (original_map, original_loop)
            leftovers = list(original_map.items())
            # Dispatchers made before the hub started sit in the original map
            # and point at it; move them, so that closing one unregisters its fd.
            original_map.clear()
        self.saved.append((module, original_map, original_loop))
        hub_map = self.default_map if module is asyncore else SocketMap()
        if hub_map is not self.default_map:
            self.bind(hub_map)
        for fd, obj in leftovers:
            if _map_of(obj) is original_map or _map_of(obj) is current:
                _set_map_of(obj, hub_map)
            hub_map[fd] = obj
        module.socket_map = hub_map
        module.loop = _refusing_loop(module, original_loop, self.loop)

    def close_all(self) -> None:
        """Close every dispatcher still open: the stop sequence's "dispatchers are closed"."""
        for socket_map in list(self.watched.values()):
            self._sync(socket_map)
        for entry in list(self.entries.values()):
            if entry.dead:
                continue
            try:
                entry.obj.close()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - one failing close must not skip the rest
                self.hub.report(
                    exc, f"bridges.asyncore: closing {_describe(entry.obj)} at hub stop failed"
                )
            if not entry.dead:
                # It did not leave its map (a close() that forgot del_channel):
                # stop watching its fd anyway, the hub is going away.
                self._drop(entry)

    def release(self) -> None:
        self.detached = True
        for handle in (self.sweep_handle, self.tick_handle, self.fresh_handle):
            if handle is not None:
                handle.cancel()
        self.sweep_handle = self.tick_handle = self.fresh_handle = None
        self.fresh.clear()
        for module, original_map, original_loop in reversed(self.saved):
            module.socket_map = original_map
            module.loop = original_loop
        self.saved.clear()
        for socket_map in self.maps.values():
            socket_map._driver = None
            _unbound_maps[id(socket_map)] = socket_map
        self.maps.clear()
        self.watched.clear()
        for waiters in (*self.loop_waiters.values(), *self.closed_waiters.values()):
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self.loop_waiters.clear()
        self.closed_waiters.clear()
        if self.expt is not None:
            self.hub.remove_reader(self.expt.fileno(), owner=_OWNER)
            self.expt.close()
            self.expt = None


def _describe(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        return f"<{type(obj).__qualname__} object at {id(obj):#x}>"


def _refusing_loop(
    module: ModuleType, original: Callable[..., Any], hub_loop: asyncio.AbstractEventLoop
) -> Callable[..., Any]:
    name = module.__name__

    def loop(
        timeout: float = 30.0, use_poll: bool = False, map: Any = None, count: Any = None
    ) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is hub_loop or map is None:
            raise HubOwnsLoopError(
                f"{name}.loop() was called while the bridges hub drives {name}'s dispatchers. "
                "It would block the hub's event loop (and every framework on it) and poll "
                "the same sockets twice. The hub already runs the dispatchers: use "
                "`await bridges.asyncore.loop(map=...)` to wait until the map is empty. Its "
                "timeout= is the total time to wait, not asyncore's per-poll timeout. "
                "Other threads may still run asyncore.loop() with a map of their own (map={...})."
            )
        return original(timeout, use_poll, map, count)

    loop.__wrapped__ = original  # type: ignore[attr-defined]
    return loop


def _driver() -> _Driver:
    driver = AsyncoreAdapter.current().driver
    if driver.detached:
        raise NotAttachedError(
            "asyncore is being detached from the running bridges hub, which is stopping. "
            "Use asyncore from code that runs while the hub runs."
        )
    return driver


def install(module: ModuleType) -> None:
    """Drive a module with asyncore's interface (waitress's wasyncore, medusa's asyncore_25).

    While a hub runs, the module's ``socket_map`` is a hub-owned
    :class:`SocketMap`, its ``loop()`` refuses to block the hub, and its
    ``ExitNow`` follows asyncore's rule.  Applies from the next hub start, and
    at once to the hub running in this thread.  ``waitress.wasyncore`` and
    ``supervisor.medusa.asyncore_25`` are installed automatically when they are
    imported before the hub starts.
    """
    for attr in ("socket_map", "loop", "ExitNow"):
        if not hasattr(module, attr):
            raise AsyncoreTypeError(
                f"bridges.asyncore.install() needs a module with asyncore's interface; "
                f"{module.__name__} has no {attr!r}. Pass the module that defines "
                "socket_map, loop() and ExitNow (e.g. waitress.wasyncore), not a module "
                "that only uses it."
            )
    if module in _flavors:
        return
    _add_flavor(module)
    try:
        driver = _driver()
    except HubNotRunningError:
        return
    driver._take_over(module)


def _add_flavor(module: ModuleType) -> None:
    global _exit_now
    _flavors.append(module)
    exit_now = getattr(module, "ExitNow", None)
    if isinstance(exit_now, type) and exit_now not in _exit_now:
        _exit_now = (*_exit_now, exit_now)


# -- the awaitable API --------------------------------------------------------


async def loop(map: Optional[Any] = None, timeout: Optional[float] = None) -> None:
    """Wait until the map is empty (every dispatcher closed) or ``timeout`` seconds pass.

    The awaitable replacement for ``asyncore.loop()``.  The hub runs the
    dispatchers whether or not anyone awaits this; awaiting it is how asyncio
    code waits for them.  ``map`` is None (``asyncore.socket_map``), a
    :class:`SocketMap` or a plain dict.  ``timeout`` is the total time to wait
    (None: no limit) -- not asyncore's per-poll timeout.  ``ExitNow`` raised by
    a dispatcher of the map is raised here.
    """
    driver = _driver()
    target = driver.adopt(map)
    if not target:
        return
    fut: asyncio.Future[None] = driver.loop.create_future()
    waiters = driver.loop_waiters.setdefault(id(target), set())
    waiters.add(fut)
    try:
        if timeout is None:
            await fut
        else:
            await asyncio.wait({fut}, timeout=timeout)
            if fut.done():
                fut.result()
    finally:
        waiters.discard(fut)
        if not fut.done():
            fut.cancel()


async def closed(dispatcher: Any) -> None:
    """Wait until ``dispatcher`` has closed (left its socket map).

    Returns at once when it is not in a map the hub drives (already closed).
    Cancelling the wait does not close the dispatcher.
    """
    driver = _driver()
    entry = driver.by_obj.get(id(dispatcher))
    if entry is None:
        socket_map = _map_of(dispatcher)
        if socket_map is not None:
            driver.adopt(socket_map)
        entry = driver.by_obj.get(id(dispatcher))
        if entry is None or entry.dead:
            return
    fut: asyncio.Future[None] = driver.loop.create_future()
    waiters = driver.closed_waiters.setdefault(id(dispatcher), set())
    waiters.add(fut)
    try:
        await fut
    finally:
        waiters.discard(fut)


def refresh(dispatcher: Any = None) -> None:
    """Re-evaluate ``readable()``/``writable()`` now, for one dispatcher or all.

    The hub does this after each of a dispatcher's handlers and in its
    periodic sweep; call it when asyncio code changed a dispatcher's mind
    (e.g. queued output on it) and the change should not wait for the sweep.
    """
    _driver().refresh(dispatcher)


def dispatchers() -> list[Any]:
    """The dispatchers the running hub drives now (every map), e.g. to report leaks."""
    return [entry.obj for entry in _driver().entries.values() if not entry.dead]


_CONVERTERS: dict[type, Callable[[Any], Any]] = {asyncore.dispatcher: closed}
for _native, _converter in _CONVERTERS.items():
    register(_native, _converter)

from ._adapter import AsyncoreAdapter  # noqa: E402 - it uses the classes above

_DEPRECATED = {"BlockingLoopError": "HubOwnsLoopError"}


def __getattr__(name: str) -> Any:
    # Old names, kept for one release.
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"bridges.asyncore.{name} is deprecated; use bridges.asyncore.{new}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
