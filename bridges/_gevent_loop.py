"""A gevent event loop (``gevent._interfaces.ILoop``) built on an asyncio loop.

gevent's hub is a greenlet that normally runs libev/libuv and switches to the
greenlets whose watchers fired.  Here asyncio is the only poller: every
gevent watcher is mapped onto the asyncio loop (``call_at``,
``call_soon_threadsafe``, signal handlers; gevent's fds go into a private
epoll whose own fd asyncio watches, or, without epoll, to
``add_reader``/``add_writer``), and when one fires,
the asyncio callback *switches into gevent's hub greenlet*, which runs the
due gevent callbacks (each may switch to user greenlets, which switch back to
the hub when they block) and then switches back to the greenlet that runs the
asyncio loop.  The hub greenlet never polls by itself.

Two ways of running, one watcher layer:

* **hosted** (what ``bridges.run`` / ``bridges.Hub`` use): someone else runs the
  asyncio loop; :meth:`AsyncioLoop.run` (called by gevent's ``Hub.run`` in the
  hub greenlet) only drains gevent's work and *parks*, switching back to the
  asyncio side.  The asyncio side may not block on gevent (it has no greenlet
  to suspend), which :class:`bridges.gevent` enforces.
* **standalone** (``GEVENT_LOOP=bridges._gevent_loop.AsyncioLoop``, used by the
  conformance script): gevent's hub greenlet runs the asyncio loop itself,
  exactly like libev's ``run()``, and returns when no referenced watcher or
  callback is left, so gevent raises ``LoopExit`` in the main greenlet as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import os
import signal as _signal_module
import sys
import weakref
from collections import deque
from fcntl import F_GETFD as _F_GETFD
from fcntl import fcntl as _fcntl
from operator import attrgetter
from typing import Any, Callable, Deque, Iterator

from greenlet import getcurrent
from greenlet import greenlet as _greenlet

from . import _unpatched
from ._errors import BridgeError
from ._unpatched import replace_selector

__all__ = ["AsyncioLoop", "ForkNotSupportedError", "RealThreadExecutor"]


class ForkNotSupportedError(BridgeError, RuntimeError):
    """``fork()`` while the hub runs gevent on a loop that cannot be renewed in the child.

    Raised in the child by ``gevent.hub.reinit()`` (which ``gevent.fork()``
    and a patched ``os.fork()`` call) on uvloop, which keeps its poller and
    self-pipe in C.  Run on the stdlib loop, or fork before ``bridges.run``.
    """


_switch = _greenlet.switch
_new_object = object.__new__

_READ = 1
_WRITE = 2
# libev's EV_ERROR as gevent passes it (a C int): an fd the poller refused.
_EV_ERROR = -0x80000000
_EPOLLIN = 0x001
_EPOLLPRI = 0x002
_EPOLLOUT = 0x004
_EPOLLERR = 0x008
_EPOLLHUP = 0x010
# libev wakes both directions on errors and hang-ups, so that the waiting
# greenlet's next call sees the error.
_EPOLL_READABLE = _EPOLLIN | _EPOLLPRI | _EPOLLERR | _EPOLLHUP
_EPOLL_WRITABLE = _EPOLLOUT | _EPOLLERR | _EPOLLHUP
_EPOLL_REPORTED = _EPOLLIN | _EPOLLPRI | _EPOLLOUT | _EPOLLERR | _EPOLLHUP
_EVENTS_OF_EPOLL_MASK = tuple(
    (_READ if mask & _EPOLL_READABLE else 0) | (_WRITE if mask & _EPOLL_WRITABLE else 0)
    for mask in range(_EPOLL_REPORTED + 1)
)
_EPOLL_MASK_OF_EVENTS = (0, _EPOLLIN, _EPOLLOUT, _EPOLLIN | _EPOLLOUT)
_BOUND_PRUNE = 8
_CALLBACK_CHECK_COUNT = 50
_REPOLLS = 4
_REAP_POLL_FIRST = 0.005
_REAP_POLL_MAX = 0.5
_STARTED_PRUNE = 1024


def _original(module: str, name: str) -> Any:
    """The unpatched ``module.name``: asyncio's machinery must not run on gevent's."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is always importable here
        return getattr(__import__(module), name)
    return get_original(module, name)


def _core_events_sentinel() -> Any:
    from gevent._ffi.loop import GEVENT_CORE_EVENTS

    return GEVENT_CORE_EVENTS


class _Callback:
    """``ICallback``: a function that the hub greenlet runs on its next pass."""

    # ``pending`` is a plain attribute, not a property: gevent reads it on
    # every greenlet start and link notification (and assigns it, too).
    __slots__ = ("args", "callback", "pending")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.callback: Callable[..., Any] | None = callback
        self.args: tuple[Any, ...] | None = args
        self.pending = True

    def stop(self) -> None:
        self.callback = None
        self.args = None
        self.pending = False

    close = stop

    def __bool__(self) -> bool:
        # gevent's convention: true while pending *or* running (args cleared after).
        return self.args is not None

    def _fire(self) -> None:
        callback = self.callback
        if callback is None:
            return
        args = self.args or ()
        self.callback = None
        self.pending = False
        try:
            callback(*args)
        finally:
            self.args = None

    def __repr__(self) -> str:
        state = "pending" if self.pending else "stopped"
        return f"<bridges gevent callback {state} {self.callback!r}>"


class _Watcher:
    """The part every ``IWatcher`` shares: callback, args, ref, active, pending."""

    _kind = "watcher"

    def __init__(self, loop: AsyncioLoop, ref: bool = True, priority: Any = None) -> None:
        self.loop = loop
        self._ref = bool(ref)
        self.priority = priority
        self._callback: Callable[..., Any] | None = None
        self._args: tuple[Any, ...] | None = ()
        self._active = False
        self._queued = False

    # gevent code may replace a started watcher's callback and args; libev
    # checks them as it does in start().  The getters are C (attrgetter):
    # gevent reads ``callback`` on every wait.

    def _set_callback(self, value: Callable[..., Any] | None) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"callback must be callable, not {value!r}")
        self._callback = value

    callback = property(attrgetter("_callback"), _set_callback)

    def _set_args(self, value: tuple[Any, ...] | None) -> None:
        if value is not None and not isinstance(value, tuple):
            raise TypeError(f"args must be a tuple or None, not {value!r}")
        self._args = value

    args = property(attrgetter("_args"), _set_args)

    # -- IWatcher -----------------------------------------------------------

    def start(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {callback!r}")
        self._callback = callback
        self._args = args
        if self._active:
            self._arm(**kwargs)
            return
        self._active = True
        if self._ref:
            self.loop._refs += 1
        try:
            self._arm(**kwargs)
        except BaseException:
            # Refused (a signal the loop keeps for itself): not started.
            self._active = False
            if self._ref:
                self.loop._refs -= 1
            self._callback = None
            self._args = ()
            raise

    def stop(self) -> None:
        if self._active:
            self._active = False
            if self._ref:
                self.loop._refs -= 1
            self._disarm()
        self._callback = None
        self._args = ()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> _Watcher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def active(self) -> bool:
        return self._active

    @property
    def pending(self) -> bool:
        return self._queued

    def _get_ref(self) -> bool:
        return self._ref

    def _set_ref(self, value: bool) -> None:
        value = bool(value)
        if value == self._ref:
            return
        if self._active:
            self.loop._refs += 1 if value else -1
        self._ref = value

    ref = property(_get_ref, _set_ref)

    def feed(self, revents: int, callback: Callable[..., Any], *args: Any) -> None:
        self._callback = callback
        self._args = args
        self.loop._queue_fire(self)

    # -- the loop's side ----------------------------------------------------

    def _arm(self, **kwargs: Any) -> None:
        """Start watching (subclasses)."""

    def _disarm(self) -> None:
        """Stop watching (subclasses)."""

    def _fire(self) -> None:
        self._queued = False
        callback = self._callback
        if callback is None:
            return
        callback(*(self._args or ()))

    def __repr__(self) -> str:
        state = " active" if self._active else ""
        return f"<bridges gevent {self._kind}{state} callback={self._callback!r}>"


class _Io(_Watcher):
    _kind = "io"

    def __init__(
        self, loop: AsyncioLoop, fd: int, events: int, ref: bool = True, priority: Any = None
    ) -> None:
        if fd < 0:
            raise ValueError(f"fd must be non-negative: {fd!r}")
        if events & ~(_READ | _WRITE):
            raise ValueError(f"illegal event mask: {events!r}")
        super().__init__(loop, ref, priority)
        self.fd = fd
        self.events = events
        self._pass_events = False
        self._revents = 0
        self._entry = _UNBOUND

    @property
    def events_str(self) -> str:
        names = [n for bit, n in ((_READ, "READ"), (_WRITE, "WRITE")) if self.events & bit]
        return "|".join(names)

    def _fire(self) -> None:
        self._queued = False
        callback = self._callback
        if callback is None or not self._active:
            return
        revents, self._revents = self._revents, 0
        if self._pass_events:
            callback(*(revents if a is _CORE_EVENTS else a for a in self._args or ()))
        else:
            callback(*(self._args or ()))

    # start/stop run on every EAGAIN of every gevent socket (libev does them
    # in C): in the common case they only flip flags.  The watcher stays
    # bound to its fd's entry while stopped, so that starting it again finds
    # the registration in place (see AsyncioLoop._io_start).

    def start(self, callback: Callable[..., Any], *args: Any, pass_events: bool = False) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {callback!r}")
        if pass_events:
            args = (_CORE_EVENTS, *args)
            self._pass_events = True
        elif self._pass_events:
            self._pass_events = False
        self._callback = callback
        self._args = args
        if not self._active:
            self._active = True
            if self._ref:
                self.loop._refs += 1
        events = self.events
        if self._entry.mask & events != events:
            self.loop._io_start(self)

    def stop(self) -> None:
        if self._active:
            self._active = False
            if self._ref:
                self.loop._refs -= 1
        self._callback = None
        self._args = ()


class _Timer(_Watcher):
    _kind = "timer"

    def __init__(
        self,
        loop: AsyncioLoop,
        after: float = 0.0,
        repeat: float = 0.0,
        ref: bool = True,
        priority: Any = None,
    ) -> None:
        if repeat < 0.0:
            raise ValueError(f"repeat must be positive or zero: {repeat!r}")
        super().__init__(loop, ref, priority)
        self.after = after
        self.repeat = repeat
        self._handle: asyncio.TimerHandle | None = None

    def _arm(self, update: Any = None, **_: Any) -> None:
        self._schedule(self.after)
        if not self._args and self.loop._hosted:
            # Greenlet.start_later() starts the greenlet with a timer.
            owner = getattr(self._callback, "__self__", None)
            if isinstance(owner, _greenlet):
                self.loop._greenlet_callback(owner)

    def _schedule(self, delay: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        aio = self.loop._aio
        self._handle = aio.call_at(aio.time() + max(delay, 0.0), self.loop._timer_due, self)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def again(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.start(callback, *args, **kwargs)

    def _fire(self) -> None:
        self._queued = False
        callback = self._callback
        if callback is None or not self._active:
            return
        args = self._args or ()
        if self.repeat:
            self._schedule(self.repeat)
        else:
            # libev stops a one-shot timer before its callback runs.
            self._handle = None
            self._active = False
            if self._ref:
                self.loop._refs -= 1
        callback(*args)

    @property
    def at(self) -> float:
        handle = self._handle
        return handle.when() if handle is not None else self.loop.now() + self.after


class _Loopwise(_Watcher):
    """prepare / check / idle: run on every pass of the hub while active."""

    def _arm(self, **_: Any) -> None:
        self.loop._per_pass[self._kind].append(self)
        self.loop._schedule_pass()

    def _disarm(self) -> None:
        watchers = self.loop._per_pass[self._kind]
        if self in watchers:
            watchers.remove(self)


class _Prepare(_Loopwise):
    _kind = "prepare"


class _Check(_Loopwise):
    _kind = "check"


class _Idle(_Loopwise):
    _kind = "idle"


class _Async(_Watcher):
    """Fires on the hub once per batch of ``send()`` calls, from any thread."""

    _kind = "async"

    def __init__(self, loop: AsyncioLoop, ref: bool = True, priority: Any = None) -> None:
        super().__init__(loop, ref, priority)
        self._sent = False

    def send(self) -> None:
        if self._sent:
            return
        self._sent = True
        aio = self.loop._aio
        if not aio.is_closed():
            aio.call_soon_threadsafe(self.loop._async_due, self)

    def send_ignoring_arg(self, _ignored: Any) -> None:
        self.send()

    @property
    def pending(self) -> bool:
        return self._sent

    def _fire(self) -> None:
        self._queued = False
        self._sent = False
        super()._fire()


class _Fork(_Watcher):
    _kind = "fork"

    def _arm(self, **_: Any) -> None:
        self.loop._forks.add(self)

    def _disarm(self) -> None:
        self.loop._forks.discard(self)


class _Signal(_Watcher):
    _kind = "signal"

    def __init__(
        self, loop: AsyncioLoop, signalnum: int, ref: bool = True, priority: Any = None
    ) -> None:
        if signalnum < 1 or signalnum >= _signal_module.NSIG:
            raise ValueError(f"illegal signal number: {signalnum!r}")
        super().__init__(loop, ref, priority)
        self.signum = signalnum

    def _arm(self, **_: Any) -> None:
        self.loop._signal_start(self)

    def _disarm(self) -> None:
        self.loop._signal_stop(self)


class _Child(_Watcher):
    _kind = "child"

    def __init__(self, loop: AsyncioLoop, pid: int, trace: int = 0, ref: bool = True) -> None:
        super().__init__(loop, ref)
        self.pid = pid
        self.rpid: int | None = None
        self.rstatus = 0

    def _arm(self, **_: Any) -> None:
        self.loop._child_start(self)

    def _disarm(self) -> None:
        self.loop._child_stop(self)


class _Stat(_Watcher):
    """Polls ``os.stat`` (asyncio has no file-change notification)."""

    _kind = "stat"

    def __init__(
        self,
        loop: AsyncioLoop,
        path: str,
        interval: float = 0.0,
        ref: bool = True,
        priority: Any = None,
    ) -> None:
        super().__init__(loop, ref, priority)
        self.path = path
        self.interval = interval if interval > 0 else 1.0
        self.attr: os.stat_result | None = self._stat()
        self.prev: os.stat_result | None = None
        self._handle: asyncio.TimerHandle | None = None

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except OSError:
            return None

    def _arm(self, **_: Any) -> None:
        self._disarm()
        self._handle = self.loop._aio.call_later(self.interval, self._poll)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _poll(self) -> None:
        self._handle = self.loop._aio.call_later(self.interval, self._poll)
        current = self._stat()
        if current != self.attr:
            self.prev, self.attr = self.attr, current
            self.loop._queue_fire(self)
            self.loop._enter_now()


class _FdEntry:
    """Per-fd state: gevent may have many watchers on one fd, the poller one registration.

    ``watchers`` are the watchers bound to this entry, started or not (each
    has ``_entry`` pointing here); ``mask`` is the registered interest
    (``_READ | _WRITE`` bits), kept while nobody waits and dropped when the
    fd turns out ready for no one.
    """

    __slots__ = ("in_epoll", "mask", "watchers")

    def __init__(self) -> None:
        self.watchers: list[_Io] = []
        self.mask = 0
        self.in_epoll = False


# The entry of every watcher not bound to a live one: it registers nothing,
# so starting such a watcher always takes the slow path.
_UNBOUND = _FdEntry()


class AsyncioLoop:
    """gevent's loop interface on top of an asyncio event loop.

    ``AsyncioLoop(aio_loop=loop, register=...)`` is the hosted form that
    :mod:`bridges.gevent` creates; ``AsyncioLoop(flags, default)`` is what
    gevent itself calls when this class is named in ``GEVENT_LOOP``.
    """

    MAXPRI = 2
    MINPRI = -2
    approx_timer_resolution = 0.00001
    backend = "asyncio"
    backend_int = 0

    def __init__(
        self,
        flags: Any = None,
        default: bool | None = None,
        *,
        aio_loop: asyncio.AbstractEventLoop | None = None,
        fd_registry: Any = None,
    ) -> None:
        self._hosted = aio_loop is not None
        if aio_loop is None:
            aio_loop = _new_standalone_loop()
        self._aio = aio_loop
        self._fd_registry = fd_registry
        self.default = bool(default) if default is not None else not self._hosted
        self.error_handler: Any = None
        self._queue: Deque[Any] = deque()
        self._per_pass: dict[str, list[_Watcher]] = {"prepare": [], "check": [], "idle": []}
        self._fds: dict[int, _FdEntry] = {}
        self._closing: set[int] = set()
        """fds whose close gevent deferred to a check watcher (``closing_fd`` returned True)."""
        self._deferred: list[_Io] = []
        """Watchers started on a closing fd: registered after the pass that closes it."""
        self._epoll: Any = _new_epoll()
        self._epoll_watched = False
        self._poll_due = False
        self._signals: dict[int, list[_Signal]] = {}
        self._children: dict[int, list[_Child]] = {}
        self._sigchld: _Signal | None = None
        self._reap_poll: asyncio.TimerHandle | None = None
        self._forks: set[_Fork] = set()
        self._refs = 0
        self._hub_glet: _greenlet | None = None
        self._entered_from: _greenlet | None = None
        self.parked = self._hosted
        """True while the hub greenlet has handed control back to the asyncio side."""
        self._switch_guard: tuple[dict[str, Any], Callable[[], Any]] | None = None
        self._pass_scheduled = False
        self._draining = False
        self._unwinding: BaseException | None = None
        self._destroyed = False
        self.iteration = 0
        self._started: dict[int, weakref.ref[_greenlet]] = {}
        self._started_limit = _STARTED_PRUNE
        self.on_late_link: Callable[[_greenlet], None] | None = None
        """Hosted mode: called when something links to a greenlet that is already dead."""

    # -- ILoop: time ----------------------------------------------------------

    def now(self) -> float:
        return self._aio.time()

    def update_now(self) -> None:
        """asyncio's clock is read live; there is no cached time to refresh."""

    update = update_now

    # -- ILoop: callbacks ---------------------------------------------------

    def run_callback(self, func: Callable[..., Any], *args: Any) -> _Callback:
        if not args and self._hosted:
            # gevent starts a greenlet with run_callback(glet.switch) and
            # notifies links with run_callback(glet._notify_links); the
            # latter mostly from the greenlet as it ends (running: skipped).
            owner = getattr(func, "__self__", None)
            if isinstance(owner, _greenlet) and owner is not getcurrent():
                self._greenlet_callback(owner)
        # _Callback(func, args) without the __init__ frame: gevent schedules
        # one for every greenlet start and every link notification.
        callback = _new_object(_Callback)
        callback.callback = func
        callback.args = args
        callback.pending = True
        self._queue.append(callback)
        if not self._draining and not self._pass_scheduled and not self._destroyed:
            # Outside a pass (asyncio code, or before the hub started): ask
            # for one.  During a pass the drain loop picks it up.
            self._pass_scheduled = True
            self._aio.call_soon(self._enter)
        return callback

    def _greenlet_callback(self, glet: _greenlet) -> None:
        """A greenlet is being started on this loop, or linked to after it died.

        A greenlet that starts here runs in a copy of the context of the code
        that started it, as an asyncio task does (native gevent starts it in
        an empty context); one that already has a context (``bg.spawn``)
        keeps it.  It is remembered so that the hub can kill it at stop
        without searching the heap.
        """
        if glet.gr_frame is None and glet.parent is not None and glet is not getcurrent():
            if glet.dead:
                if self.on_late_link is not None:
                    self.on_late_link(glet)
                return
            if glet.gr_context is None:
                glet.gr_context = contextvars.copy_context()
            started = self._started
            started[id(glet)] = weakref.ref(glet)
            if len(started) > self._started_limit:
                self._prune_started()

    def _prune_started(self) -> None:
        # Plain weak references, pruned when the dict has doubled: a WeakSet's
        # per-entry callback costs more than the rest of the bookkeeping.
        started = self._started
        for key, ref in list(started.items()):
            glet = ref()
            if glet is None or glet.dead:
                del started[key]
        self._started_limit = max(_STARTED_PRUNE, 2 * len(started))

    def started_greenlets(self) -> list[_greenlet]:
        """Hosted mode: the greenlets started on this loop that are still alive."""
        alive = []
        for ref in list(self._started.values()):
            glet = ref()
            if glet is not None and not glet.dead:
                alive.append(glet)
        return alive

    def run_callback_first(self, func: Callable[..., Any], *args: Any) -> _Callback:
        """Like :meth:`run_callback`, but ahead of every callback already queued."""
        callback = _Callback(func, args)
        self._queue.appendleft(callback)
        if not self._draining:
            self._schedule_pass()
        return callback

    def run_callback_threadsafe(self, func: Callable[..., Any], *args: Any) -> _Callback:
        callback = _Callback(func, args)
        self._queue.append(callback)
        if not self._aio.is_closed():
            self._aio.call_soon_threadsafe(self._enter)
        return callback

    # -- ILoop: watchers ----------------------------------------------------

    def io(self, fd: int, events: int, ref: bool = True, priority: Any = None) -> _Io:
        # ILoop: an invalid fd raises EBADF here, as libev's io does (gevent's
        # selectors turn that into "Invalid file descriptor").
        _fcntl(fd, _F_GETFD)
        return _Io(self, fd, events, ref, priority)

    def timer(
        self, after: float, repeat: float = 0.0, ref: bool = True, priority: Any = None
    ) -> _Timer:
        return _Timer(self, after, repeat, ref, priority)

    def signal(self, signum: int, ref: bool = True, priority: Any = None) -> _Signal:
        return _Signal(self, signum, ref, priority)

    def idle(self, ref: bool = True, priority: Any = None) -> _Idle:
        return _Idle(self, ref, priority)

    def prepare(self, ref: bool = True, priority: Any = None) -> _Prepare:
        return _Prepare(self, ref, priority)

    def check(self, ref: bool = True, priority: Any = None) -> _Check:
        return _Check(self, ref, priority)

    def fork(self, ref: bool = True, priority: Any = None) -> _Fork:
        return _Fork(self, ref, priority)

    def async_(self, ref: bool = True, priority: Any = None) -> _Async:
        return _Async(self, ref, priority)

    def child(self, pid: int, trace: int = 0, ref: bool = True) -> _Child:
        if not self.default and not self._hosted:
            # A gevent hub of another thread: SIGCHLD is the main thread's.
            # gevent.subprocess expects libev's TypeError and message.
            raise TypeError("child watchers are only available on the default loop")
        return _Child(self, pid, trace, ref)

    def stat(
        self, path: str, interval: float = 0.0, ref: bool = True, priority: Any = None
    ) -> _Stat:
        return _Stat(self, path, interval, ref, priority)

    def install_sigchld(self) -> None:
        """Child watchers install their SIGCHLD handler when they start."""

    def reset_sigchld(self) -> None:
        """See :meth:`install_sigchld`."""

    def closing_fd(self, fd: int) -> bool:
        """Forget ``fd``'s registration and wake the watchers still waiting on it."""
        entry = self._fds.pop(fd, None)
        if entry is None:
            return False
        self._unregister(fd, entry)
        woken = False
        for watcher in self._unbind_all(entry):
            if watcher._active:
                watcher._revents |= watcher.events
                self._queue_fire(watcher)
                woken = True
        if woken:
            # gevent closes the fd in a check watcher, at the end of a pass.
            self._closing.add(fd)
            self._schedule_pass()
        return woken

    # -- ILoop: running -----------------------------------------------------

    def run(self, nowait: bool = False, once: bool = False) -> None:
        """Called by gevent's ``Hub.run`` in the hub greenlet."""
        self._hub_glet = getcurrent()
        self.parked = False
        if not self._hosted:
            self._run_standalone(nowait or once)
            return
        guard = self._switch_guard
        namespace = guard[0] if guard is not None else {}
        namespace.pop("switch", None)
        while True:
            self._pass()
            # Park: hand control back to the asyncio side until it enters again.
            back = self._entered_from
            self._entered_from = None
            self.parked = True
            if guard is not None:
                namespace["switch"] = guard[1]
            _switch(back)
            self.parked = False
            namespace.pop("switch", None)

    def guard_hub_switch(self, namespace: dict[str, Any], refuse: Callable[[], Any]) -> None:
        """Hosted mode: while the hub is parked, its ``switch`` is ``refuse``.

        gevent blocks a greenlet with ``hub.switch()``.  From the asyncio side
        (the hub parked) that must fail instead of stalling the loop.  The
        check is not a ``switch`` override, which would put a Python call on
        every blocking call of every greenlet: ``refuse`` goes into the hub
        instance's ``__dict__`` (``namespace``) when the hub parks and leaves
        it when the hub is entered, once per pass.  gevent's compiled callers
        (``Waiter.get``, ``wait_on_watcher``) look ``switch`` up on the
        instance, so they see it (gevent 26.9; tests/test_gevent.py's
        blocking-call tests fail if that changes).
        """
        self._switch_guard = (namespace, refuse)
        if self.parked:
            namespace["switch"] = refuse

    def _run_standalone(self, once: bool) -> None:
        aio = self._aio
        if once:
            aio.call_soon(aio.stop)
        elif self._idle_now():
            return
        aio.run_forever()
        unwinding, self._unwinding = self._unwinding, None
        if unwinding is not None:
            raise unwinding

    def _idle_now(self) -> bool:
        return self._refs <= 0 and not self._queue

    def reinit(self) -> None:
        """After ``fork()``, in the child: pollers and self-pipe of its own, then the fork watchers.

        The child inherits the parent's epoll objects and asyncio's self-pipe,
        which are shared kernel objects: without new ones, the child closing
        an inherited socket would unregister it in the *parent*, and either
        process could swallow the other's wake-ups.
        """
        if not self._aio.is_closed() and not _renew_after_fork(self._aio):
            raise ForkNotSupportedError(
                f"fork() while gevent runs on {type(self._aio).__name__}: that loop cannot "
                "give the child poller and self-pipe of its own. Use the stdlib asyncio "
                "loop (loop_factory=None), or fork before bridges.run()."
            )
        self._renew_epoll()
        for watcher in list(self._forks):
            self._queue_fire(watcher)
        self._schedule_pass()

    def break_(self, how: Any = None) -> None:
        if not self._hosted:
            self._aio.stop()

    def ref(self) -> None:
        self._refs += 1

    def unref(self) -> None:
        self._refs -= 1

    @property
    def activecnt(self) -> int:
        return self._refs

    @property
    def pendingcnt(self) -> int:
        return len(self._queue)

    def verify(self) -> None:
        """Nothing to verify: asyncio keeps its own invariants."""

    def fileno(self) -> int | None:
        return None

    def debug(self) -> list[str]:
        return [f"{self!r}", f"referenced watchers: {self._refs}, queued: {len(self._queue)}"]

    def handle_error(self, context: Any, type_: Any, value: Any, tb: Any) -> None:
        handler = self.error_handler
        if handler is not None:
            handler.handle_error(context, type_, value, tb)
            return
        import traceback

        traceback.print_exception(type_, value, tb)

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    @property
    def ptr(self) -> int:
        """libev's loop pointer, which gevent's code checks for truth: 0 once destroyed."""
        return 0 if self._destroyed else id(self)

    def _callback_failed(self, context: Any) -> None:
        """Route the exception being handled to gevent's error handler, and never raise.

        An exception escaping the hub greenlet would kill it.  gevent's rule is
        that ``handle_error`` must not raise; when it does anyway (a broken
        ``sys.stderr``), the error is written to the original stderr instead -
        except ``HubDestroyed``, which gevent re-raises on purpose to unwind
        the hub.
        """
        from gevent.exceptions import HubDestroyed

        try:
            self.handle_error(context, *sys.exc_info())
        except HubDestroyed as exc:
            if self._hosted:
                raise
            # Standalone, we are inside asyncio's run_forever(), which would
            # swallow it: stop the loop and let run() raise it to unwind the hub.
            self._unwinding = exc
            self._aio.stop()
        except BaseException:  # noqa: BLE001 - see the docstring
            import traceback

            with contextlib.suppress(Exception):
                traceback.print_exc(file=sys.__stderr__)

    def destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        self.default = False
        self.parked = True  # from now on every blocking call fails loudly
        if self._switch_guard is not None:
            self._switch_guard[0]["switch"] = self._switch_guard[1]
        for fd, entry in list(self._fds.items()):
            self._unregister(fd, entry)
            self._unbind_all(entry)
        self._fds.clear()
        if self._epoll is not None:
            self._unwatch_epoll()
            self._epoll.close()
        for signum in list(self._signals):
            self._remove_signal(signum)
        self._queue.clear()
        for watchers in self._per_pass.values():
            watchers.clear()
        if not self._hosted and not self._aio.is_closed():
            self._aio.close()

    def _format(self) -> str:
        mode = "hosted" if self._hosted else "standalone"
        return f"asyncio {mode} refs={self._refs} queued={len(self._queue)}"

    def __repr__(self) -> str:
        return f"<bridges AsyncioLoop {self._format()} on {self._aio!r}>"

    # -- dispatch: getting gevent work run in the hub greenlet ---------------

    def _schedule_pass(self) -> None:
        if self._pass_scheduled or self._destroyed:
            return
        self._pass_scheduled = True
        self._aio.call_soon(self._enter)

    def _enter(self) -> None:
        """asyncio callback: let the hub greenlet run what is due."""
        self._pass_scheduled = False
        self._enter_now()

    def _enter_now(self) -> None:
        hub = self._hub_glet
        current = getcurrent()
        if current is hub:
            self._pass()
        elif hub is not None and not self._destroyed:
            self._entered_from = current
            _switch(hub)

    def run_soon_from_asyncio(self, func: Callable[..., Any], *args: Any) -> None:
        """From an asyncio callback: run ``func(*args)`` in the hub greenlet right now."""
        self._queue.append(_Callback(func, args))
        self._enter_now()

    def run_pending_from_asyncio(self) -> None:
        """From asyncio code: run the hub's queued callbacks now, not on the next iteration.

        Only on the asyncio side (the hub parked), and only when there is
        something to run; from a greenlet the pass is already under way.
        """
        if self.parked and self._queue and not self._destroyed and self._hosted:
            self._enter_now()

    def bind_hub(self, hub: _greenlet) -> None:
        """Hosted mode: the gevent hub greenlet that asyncio callbacks switch into."""
        self._hub_glet = hub

    def _queue_fire(self, watcher: _Watcher) -> None:
        if not watcher._queued:
            watcher._queued = True
            self._queue.append(watcher)

    def _pass(self) -> None:
        """One pass of the gevent loop: prepare, callbacks, check, idle (libev's order)."""
        self.iteration += 1
        queue = self._queue
        per_pass = self._per_pass
        self._draining = True
        try:
            repolls = 0
            if self._poll_due and self._poll_fds() > 1:
                repolls = _REPOLLS
            if per_pass["prepare"]:
                self._run_watchers(per_pass["prepare"])
            count = _CALLBACK_CHECK_COUNT
            deadline = 0.0
            while True:
                if not queue:
                    if not repolls or not self._repoll():
                        break
                    repolls -= 1
                item = queue.popleft()
                try:
                    # The two hot _fire()s inline: _Callback (every greenlet
                    # start, switch and link notification) and _Io (every
                    # ready fd), without a Python frame each.
                    kind = item.__class__
                    if kind is _Callback:
                        callback = item.callback
                        if callback is not None:
                            item.callback = None
                            item.pending = False
                            try:
                                callback(*item.args)
                            finally:
                                item.args = None
                    elif kind is _Io and not item._pass_events:
                        item._queued = False
                        item._revents = 0
                        callback = item._callback
                        if callback is not None and item._active:
                            callback(*(item._args or ()))
                    else:
                        item._fire()
                except BaseException:  # noqa: BLE001 - nothing may escape the hub greenlet
                    self._callback_failed(item)
                    if self._unwinding is not None:
                        return
                count -= 1
                if not count:
                    # Greenlets that keep yielding (sleep(0) loops) must not
                    # starve asyncio: after a switch interval, give the loop a
                    # turn and continue on the next pass.
                    count = _CALLBACK_CHECK_COUNT
                    now = self._aio.time()
                    if not deadline:
                        deadline = now + sys.getswitchinterval()
                    elif now >= deadline:
                        break
            if per_pass["check"]:
                self._run_watchers(per_pass["check"])
            if per_pass["idle"] and not queue:
                self._run_watchers(per_pass["idle"])
        finally:
            self._draining = False
        if self._closing:
            self._register_deferred()
        if queue or per_pass["check"] or per_pass["idle"] or per_pass["prepare"]:
            self._schedule_pass()
        if not self._hosted and self._idle_now():
            self._aio.stop()

    def _repoll(self) -> bool:
        """Poll the private epoll again before parking; True if it found work.

        The greenlets just served usually made the next fds ready (a reply
        sent, a peer answered): one ``epoll.poll(0)`` here serves them
        without an asyncio iteration (its own ``select`` system call and
        bookkeeping) in between.  At most ``_REPOLLS`` times per pass, and
        only in passes that started with several ready fds: with one (a
        single connection's ping-pong) the peer has not answered yet, and the
        poll would be a wasted system call.
        """
        if self._destroyed:
            return False
        self._poll_fds()
        return bool(self._queue)

    def _run_watchers(self, watchers: list[_Watcher]) -> None:
        for watcher in list(watchers):
            if not watcher._active:
                continue
            try:
                watcher._fire()
            except BaseException:  # noqa: BLE001 - nothing may escape the hub greenlet
                self._callback_failed(watcher)

    def _timer_due(self, watcher: _Timer) -> None:
        watcher._handle = None
        self._queue_fire(watcher)
        self._enter_now()

    def _async_due(self, watcher: _Async) -> None:
        if watcher._active:
            self._queue_fire(watcher)
        else:
            watcher._sent = False
        self._enter_now()

    # -- io: many gevent watchers per fd, registered lazily -----------------

    def _io_start(self, watcher: _Io) -> None:
        """The slow path of ``_Io.start``: bind the watcher, register what is missing."""
        if watcher.fd in self._closing:
            # The fd is closed at the end of this pass.  Registering it now
            # would be dropped by the kernel at that close, silently; libev
            # registers at its next poll and so reports the closed fd to the
            # watcher (gevent's select.poll turns that into POLLNVAL).
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
        watcher._entry = entry

    @staticmethod
    def _waited_on(entry: _FdEntry) -> bool:
        return any(watcher._active for watcher in entry.watchers)

    @staticmethod
    def _unbind_all(entry: _FdEntry) -> list[_Io]:
        """Unbind ``entry``'s watchers; return them."""
        watchers, entry.watchers = entry.watchers, []
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
            entry.mask |= events
            try:
                self._epoll_sync(fd, entry)
            except BaseException:
                entry.mask = before
                raise
            return
        for event in (_READ, _WRITE):
            if events & event:
                self._add(fd, event)
                entry.mask |= event

    def _add(self, fd: int, event: int) -> None:
        registry = self._fd_registry
        read = event == _READ
        try:
            if registry is not None:
                (registry.add_reader if read else registry.add_writer)(
                    fd, self._io_ready, fd, event, owner="gevent"
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
            (registry.remove_reader if read else registry.remove_writer)(fd, owner="gevent")
        else:
            (self._aio.remove_reader if read else self._aio.remove_writer)(fd)

    def _unregister(self, fd: int, entry: _FdEntry, events: int = _READ | _WRITE) -> None:
        """Drop ``events`` from ``fd``'s registration."""
        dropped = entry.mask & events
        entry.mask &= ~events
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

    def _queue_io(self, entry: _FdEntry, event: int) -> int:
        """Queue the started watchers waiting for ``event``; return the events they want."""
        wanted = 0
        queue = self._queue
        for watcher in entry.watchers:
            got = watcher.events & event
            if got and watcher._active:
                wanted |= got
                watcher._revents |= got
                if not watcher._queued:
                    watcher._queued = True
                    queue.append(watcher)
        return wanted

    # asyncio as the poller (where there is no epoll): one reader/writer per fd.

    def _io_ready(self, fd: int, event: int) -> None:
        """asyncio reader/writer callback: queue the gevent watchers waiting for ``event``."""
        entry = self._fds.get(fd)
        if entry is None:
            return
        if not self._queue_io(entry, event):
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
        if entry.in_epoll:
            try:
                epoll.modify(fd, mask)
            except FileNotFoundError:
                # Closed and reused behind gevent's back: epoll forgot the old file.
                epoll.register(fd, mask)
        else:
            try:
                epoll.register(fd, mask)
            except FileExistsError:
                epoll.modify(fd, mask)
            entry.in_epoll = True

    def _watch_epoll(self) -> None:
        epfd = self._epoll.fileno()
        if self._fd_registry is not None:
            self._fd_registry.add_reader(epfd, self._epoll_ready, owner="gevent")
        else:
            self._aio.add_reader(epfd, self._epoll_ready)
        self._epoll_watched = True

    def _unwatch_epoll(self) -> None:
        if self._epoll_watched and not self._aio.is_closed():
            epfd = self._epoll.fileno()
            if self._fd_registry is not None:
                self._fd_registry.remove_reader(epfd, owner="gevent")
            else:
                self._aio.remove_reader(epfd)
        self._epoll_watched = False

    def _renew_epoll(self) -> None:
        """In a forked child: a private epoll of its own, with the registrations kept."""
        if self._epoll is None:
            return
        self._unwatch_epoll()
        self._epoll.close()
        self._epoll = _new_epoll()
        for fd, entry in self._fds.items():
            entry.in_epoll = False
            try:
                self._epoll_sync(fd, entry)
            except OSError:
                entry.mask = 0  # closed since; a new start registers afresh

    def _epoll_ready(self) -> None:
        """asyncio reader callback on the private epoll: let the hub poll it."""
        self._poll_due = True
        self._enter_now()

    def _poll_fds(self) -> int:
        """Queue the watchers of the fds the private epoll reports ready; return how many fds."""
        self._poll_due = False
        fds = self._fds
        queue = self._queue
        ready = self._epoll.poll(0)
        for fd, mask in ready:
            entry = fds.get(fd)
            if entry is None:
                with contextlib.suppress(OSError):
                    self._epoll.unregister(fd)
                continue
            event = _EVENTS_OF_EPOLL_MASK[mask & _EPOLL_REPORTED] & entry.mask
            # _queue_io, inline: this runs for every ready fd.
            wanted = 0
            for watcher in entry.watchers:
                got = watcher.events & event
                if got and watcher._active:
                    wanted |= got
                    watcher._revents |= got
                    if not watcher._queued:
                        watcher._queued = True
                        queue.append(watcher)
            idle = event & ~wanted
            if idle:
                self._drop_idle_registration(fd, entry, idle)
        return len(ready)

    # -- signals and children ---------------------------------------------

    def _signal_start(self, watcher: _Signal) -> None:
        watchers = self._signals.get(watcher.signum)
        if watchers is None:
            registry = self._fd_registry
            with _real_signal_calls():
                if registry is not None:
                    registry.add_signal_handler(
                        watcher.signum, self._signal_due, watcher.signum, owner="gevent"
                    )
                else:
                    self._aio.add_signal_handler(watcher.signum, self._signal_due, watcher.signum)
            watchers = self._signals[watcher.signum] = []
        if watcher not in watchers:
            watchers.append(watcher)

    def _signal_stop(self, watcher: _Signal) -> None:
        watchers = self._signals.get(watcher.signum)
        if watchers is None:
            return
        if watcher in watchers:
            watchers.remove(watcher)
        if not watchers:
            self._remove_signal(watcher.signum)

    def _remove_signal(self, signum: int) -> None:
        del self._signals[signum]
        if self._aio.is_closed():
            return
        registry = self._fd_registry
        with _real_signal_calls():
            if registry is not None:
                registry.remove_signal_handler(signum, owner="gevent")
            else:
                self._aio.remove_signal_handler(signum)

    def _signal_due(self, signum: int) -> None:
        for watcher in list(self._signals.get(signum, ())):
            self._queue_fire(watcher)
        self._enter_now()

    def _child_start(self, watcher: _Child) -> None:
        first = not self._children
        self._children.setdefault(watcher.pid, []).append(watcher)
        if first:
            self._watch_sigchld()
        elif self._reap_poll is not None:
            self._poll_children_soon()
        # The child may have exited before we watched it.
        self._aio.call_soon(self._reap)

    def _watch_sigchld(self) -> None:
        if self._sigchld is None:
            self._sigchld = _Signal(self, _signal_module.SIGCHLD, ref=False)
        try:
            self._sigchld.start(self._reap)
        except RuntimeError:
            # uvloop keeps SIGCHLD for its own subprocesses: poll instead,
            # backing off from _REAP_POLL_FIRST to _REAP_POLL_MAX seconds.
            self._poll_children_soon()

    def _poll_children_soon(self) -> None:
        if self._reap_poll is not None:
            self._reap_poll.cancel()
        self._reap_poll = self._aio.call_later(
            _REAP_POLL_FIRST, self._poll_children, _REAP_POLL_FIRST
        )

    def _poll_children(self, delay: float) -> None:
        self._reap_poll = None
        if not self._children:
            return
        self._reap()
        delay = min(2 * delay, _REAP_POLL_MAX)
        self._reap_poll = self._aio.call_later(delay, self._poll_children, delay)

    def _child_stop(self, watcher: _Child) -> None:
        watchers = self._children.get(watcher.pid)
        if watchers and watcher in watchers:
            watchers.remove(watcher)
            if not watchers:
                del self._children[watcher.pid]
        if not self._children:
            if self._sigchld is not None:
                self._sigchld.stop()
            if self._reap_poll is not None:
                self._reap_poll.cancel()
                self._reap_poll = None

    def _reap(self) -> None:
        """SIGCHLD, or a child watcher just started: reap the watched children that exited.

        Children are reaped by pid, so that asyncio's own subprocesses are
        left to asyncio.  As in libev, a ``child(0)`` watcher (gevent's
        ``waitpid(-1)``) also sees each watched child reaped here, and
        otherwise reaps any one child; the next one in a later call, while
        such a watcher is still started.
        """
        waitpid = _original("os", "waitpid")
        reaped = False
        for pid in [pid for pid in self._children if pid > 0]:
            try:
                rpid, status = waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if rpid:
                self._child_exited(rpid, status)
                reaped = True
        if not reaped and self._children.get(0):
            try:
                rpid, status = waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if rpid:
                self._child_exited(rpid, status)
                reaped = True
        if reaped and self._children.get(0):
            self._aio.call_soon(self._reap)

    def _child_exited(self, rpid: int, status: int) -> None:
        for pid in (rpid, 0):
            for watcher in self._children.get(pid, ()):
                watcher.rpid = rpid
                watcher.rstatus = status
                self._queue_fire(watcher)
        self._schedule_pass()


_CORE_EVENTS = _core_events_sentinel()


def _new_standalone_loop() -> asyncio.AbstractEventLoop:
    """A fresh asyncio loop on the *original* selector and self-pipe, for the standalone mode.

    After ``monkey.patch_all()`` asyncio would build its self-pipe from
    gevent sockets, which need a gevent hub - the one being created right
    now.  ``socket.socketpair`` is swapped for the original while the loop is
    built (the constructor is the only place asyncio calls it).
    """
    with _plain_socketpair_installed():
        return asyncio.SelectorEventLoop(_original("selectors", "DefaultSelector")())


@contextlib.contextmanager
def _swapped(module: Any, name: str, value: Any) -> Iterator[None]:
    """``module.name`` is ``value`` inside the block (asyncio looks these up at call time)."""
    patched = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, patched)


@contextlib.contextmanager
def _real_signal_calls() -> Iterator[None]:
    """asyncio's ``signal.signal()``/``set_wakeup_fd()`` calls reach the OS, not gevent.

    After ``patch_all`` gevent's ``signal.signal()`` keeps a SIGCHLD handler
    to itself instead of installing it, and would take asyncio's ``SIG_DFL``
    at removal for the application resetting its own handler; gevent's
    ``set_wakeup_fd()`` would take asyncio's self-pipe for the application's
    wake-up fd, to which gevent reports SIGCHLD.
    """
    with (
        _swapped(_signal_module, "signal", _original("signal", "signal")),
        _swapped(_signal_module, "set_wakeup_fd", _original("signal", "set_wakeup_fd")),
    ):
        yield


def _plain_socketpair_installed() -> contextlib.AbstractContextManager[None]:
    """``socket.socketpair`` is an unpatched one while asyncio makes its self-pipe."""
    import socket as socket_module

    return _swapped(socket_module, "socketpair", _plain_socketpair)


def _renew_after_fork(loop: asyncio.AbstractEventLoop) -> bool:
    """In a forked child: a new selector and self-pipe for ``loop``; False if it cannot.

    CPython 3.9-3.13's ``BaseSelectorEventLoop`` makes its self-pipe in
    ``_make_self_pipe``, drops it in ``_close_self_pipe`` and keeps its write
    end in ``_csock``, which is also the signal wake-up fd while signal
    handlers are installed; ``asyncio.events._set_running_loop`` records the
    running loop with the pid (tests/test_gevent.py fails if these change).
    uvloop keeps all of this in C.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return False
    replace_selector(loop, type(loop._selector)())  # type: ignore[attr-defined]
    loop._close_self_pipe()  # type: ignore[attr-defined]
    with _plain_socketpair_installed():
        loop._make_self_pipe()  # type: ignore[attr-defined]
    if getattr(loop, "_signal_handlers", None):
        with contextlib.suppress(ValueError), _real_signal_calls():  # ValueError: not main thread
            _signal_module.set_wakeup_fd(loop._csock.fileno())  # type: ignore[attr-defined]
    if loop.is_running():
        # asyncio hides a running loop from a forked child (it records the
        # pid); this child goes on running it.
        asyncio.events._set_running_loop(loop)
    return True


def _new_epoll() -> Any:
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


def _plain_socketpair(*args: Any) -> tuple[Any, Any]:
    """``socket.socketpair`` built from the original socket class, whatever is patched."""
    import _socket

    socket_class = _original("socket", "socket")
    left, right = _socket.socketpair(*args)
    return (
        socket_class(left.family, left.type, left.proto, left.detach()),
        socket_class(right.family, right.type, right.proto, right.detach()),
    )


class RealThreadExecutor(_unpatched.RealThreadExecutor):
    """asyncio's default executor on real OS threads, even after ``monkey.patch_all()``."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(_original, max_workers)


# gevent.core re-exports the module of the configured loop class and expects
# it to name that class ``loop`` (gevent.testing reads gevent.core.loop) and
# the io event bits ``READ`` and ``WRITE``.
loop = AsyncioLoop
READ = _READ
WRITE = _WRITE
# gevent's loops keep ``async`` (a keyword since Python 3.7) as an alias.
setattr(AsyncioLoop, "async", AsyncioLoop.async_)


def _declare_gevent_interfaces() -> None:
    """Declare that the loop and its callbacks implement gevent's ``ILoop``/``ICallback``.

    gevent's own loops do, and its tests check with ``zope.interface``'s
    ``verifyObject``.  ``gevent._interfaces`` is private; checked on gevent
    23.9-26.9 (tests/test_gevent.py fails if it moves).
    """
    from gevent._interfaces import ICallback, ILoop
    from zope.interface import classImplements

    classImplements(AsyncioLoop, ILoop)
    classImplements(_Callback, ICallback)


_declare_gevent_interfaces()
