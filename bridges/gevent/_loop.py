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

import asyncio
import contextlib
import contextvars
import sys
import weakref
from collections import deque
from fcntl import F_GETFD as _F_GETFD
from fcntl import fcntl as _fcntl
from typing import Any, Callable, Deque

from greenlet import getcurrent
from greenlet import greenlet as _greenlet

from .._errors import BridgeError
from ._children import SignalsAndChildren
from ._compat import new_standalone_loop, renew_after_fork
from ._dispatch import DispatchCore
from ._poller import FdPoller, new_epoll
from ._watchers import (
    _READ,
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
    _switch,
    _Timer,
    _Watcher,
)

__all__ = ["AsyncioLoop", "ForkNotSupportedError"]


class ForkNotSupportedError(BridgeError, RuntimeError):
    """``fork()`` while the hub runs gevent on a loop that cannot be renewed in the child.

    Raised in the child by ``gevent.hub.reinit()`` (which ``gevent.fork()``
    and a patched ``os.fork()`` call) on uvloop, which keeps its poller and
    self-pipe in C.  Run on the stdlib loop, or fork before ``bridges.run``.
    """


class AsyncioLoop(DispatchCore, FdPoller, SignalsAndChildren):
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
        self._acct: Any = getattr(fd_registry, "accounting", None)
        """The bridges hub's accounting slot (None when off): each hub pass is bracketed."""
        if aio_loop is None:
            aio_loop = new_standalone_loop()
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
        self._epoll: Any = new_epoll()
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
        if not self._aio.is_closed() and not renew_after_fork(self._aio):
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
