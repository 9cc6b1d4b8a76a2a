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
* **standalone** (``GEVENT_LOOP=bridges.gevent.AsyncioLoop``, used by the
  conformance script): gevent's hub greenlet runs the asyncio loop itself,
  exactly like libev's ``run()``, and returns when no referenced watcher or
  callback is left, so gevent raises ``LoopExit`` in the main greenlet as usual.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections import deque
from fcntl import F_GETFD as _F_GETFD
from fcntl import fcntl as _fcntl
from typing import Any, Callable, Deque

from greenlet import getcurrent
from greenlet import greenlet as _greenlet

from .._reaper import ChildReaper
from ._backends import (
    UnsupportedBackendError,
    backend_of,
    choose_selector,
    recommended_backends,
    supported_backends,
)
from ._children import SignalsAndChildren
from ._compat import call_soon_threadsafe_keeping_gil, new_standalone_loop
from ._dispatch import DispatchCore
from ._lifetime import ForkNotSupportedError, Lifetime
from ._poller import FdPoller, new_epoll
from ._watchers import (
    _INLINE_PASSES,
    _READ,
    _REAP_POLL_FIRST,
    _REAP_POLL_MAX,
    _STARTED_PRUNE,
    _WRITE,
    _Async,
    _Callback,
    _Check,
    _Child,
    _FdEntry,
    _Fork,
    _Idle,
    _Io,
    _new_object,
    _Prepare,
    _Signal,
    _Stat,
    _Timer,
    _Watcher,
)

__all__ = [
    "AsyncioLoop",
    "ForkNotSupportedError",
    "UnsupportedBackendError",
    "recommended_backends",
    "supported_backends",
]


class AsyncioLoop(Lifetime, DispatchCore, FdPoller, SignalsAndChildren):
    """gevent's loop interface on top of an asyncio event loop.

    ``AsyncioLoop(aio_loop=loop, register=...)`` is the hosted form that
    :mod:`bridges.gevent` creates; ``AsyncioLoop(flags, default)`` is what
    gevent itself calls when this class is named in ``GEVENT_LOOP``; there
    ``flags`` is the backend (``GEVENT_BACKEND``): the name of the selector
    the asyncio loop waits on (``'epoll'``, ``'poll'``, ``'select'``...).
    """

    MAXPRI = 2
    MINPRI = -2
    approx_timer_resolution = 0.00001
    backend_int = 0
    """libev's backend bit; gevent's own loops other than libev's say 0 too."""

    def __init__(
        self,
        flags: Any = None,
        default: bool | None = None,
        *,
        aio_loop: asyncio.AbstractEventLoop | None = None,
        fd_registry: Any = None,
    ) -> None:
        self._hosted = aio_loop is not None
        acct = getattr(fd_registry, "accounting", None)
        self._meter: Any = None if acct is None else acct.meter_for("gevent")
        """gevent's meter in the bridges hub's accounting (None when off): brackets each pass."""
        if aio_loop is None:
            backend, selector_class = choose_selector(flags)
            aio_loop = new_standalone_loop(selector_class)
        else:
            backend = backend_of(aio_loop)
        self._aio = aio_loop
        self._call_threadsafe = call_soon_threadsafe_keeping_gil(aio_loop)
        """``call_soon_threadsafe`` for other threads' wake-ups, holding the GIL as libev does."""
        self.backend = backend
        """The selector asyncio waits on, by libev's name (``'epoll'``); ``'default'`` if none."""
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
        self._unbound: list[_Io] = []
        """Watchers still started when their fd was closed or refused (see _referenced_ios)."""
        # gevent's fds share one private epoll unless another backend was asked for.
        self._epoll: Any = new_epoll() if self._hosted or backend == "epoll" else None
        self._epoll_watched = False
        self._poll_due = False
        self._signals: dict[int, list[_Signal]] = {}
        self._children: dict[int, list[_Child]] = {}
        self._sigchld: _Signal | None = None
        self._reaper = ChildReaper(
            lambda: self._aio,
            self._reap,
            lambda: bool(self._children),
            first=_REAP_POLL_FIRST,
            last=_REAP_POLL_MAX,
        )
        """Polls for exited children where SIGCHLD is not ours (uvloop keeps it)."""
        self._forks: set[_Fork] = set()
        self._refs = 0
        """Referenced watchers other than io (counted when asked), plus ref() - unref()."""
        self._hub_glet: _greenlet | None = None
        self._entered_from: _greenlet | None = None
        self._direct = False
        """Whether :meth:`resume_from_asyncio` runs a greenlet, the hub greenlet parked."""
        self.parked = self._hosted
        """True while the hub greenlet has handed control back to the asyncio side."""
        self._switch_guard: tuple[dict[str, Any], Callable[[], Any]] | None = None
        self._pass_scheduled = False
        self._inline_budget = _INLINE_PASSES
        """How many more hub passes asyncio code may run inline before the loop's next turn."""
        self._draining = False
        self._now = aio_loop.time()
        """Standalone: the time the last pass started, or ``update_now()`` (libev's ``ev_now``)."""
        self._stop_after_pass = False
        """Standalone ``run(once=True)``: the asyncio loop stops after the next hub pass."""
        self._unwinding: BaseException | None = None
        self._destroyed = False
        self.iteration = 0
        self._started: dict[int, weakref.ref[_greenlet]] = {}
        self._started_limit = _STARTED_PRUNE
        self.on_late_link: Callable[[_greenlet], None] | None = None
        """Hosted mode: called when something links to a greenlet that is already dead."""

    # -- ILoop: time ----------------------------------------------------------

    def now(self) -> float:
        """The loop's time: asyncio's clock, read live.

        Except outside a pass of the standalone loop (before its hub first
        runs, or between calls of ``loop.run()`` made directly), where it is
        libev's cached clock: the time the last pass started, or that
        :meth:`update_now` read; timers started there count from it, as
        gevent's own tests expect.  Inside ``bridges.run`` asyncio code runs
        between gevent's passes, so a cached time could be stale by any
        amount there.
        """
        if self._hosted or self._draining:
            return self._aio.time()
        return self._now

    def update_now(self) -> None:
        self._now = self._aio.time()

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
            self._call_threadsafe(self._enter)
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
                self._keep_unbound(watcher)
                watcher._revents |= watcher.events
                self._queue_fire(watcher)
                woken = True
        if woken:
            # gevent closes the fd in a check watcher, at the end of a pass.
            self._closing.add(fd)
            self._schedule_pass()
        return woken

    def _format(self) -> str:
        mode = "hosted" if self._hosted else "standalone"
        return f"asyncio {mode} refs={self.activecnt} queued={len(self._queue)}"

    def __repr__(self) -> str:
        return f"<bridges AsyncioLoop {self._format()} on {self._aio!r}>"


# gevent.core re-exports the module of the configured loop class and expects
# it to name that class ``loop`` (gevent.testing reads gevent.core.loop), the
# io event bits ``READ`` and ``WRITE``, and ``supported_backends()`` (imported
# above, with ``recommended_backends()``).
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
