"""gevent's watchers (``gevent._interfaces.IWatcher`` and friends) on the hub's loop.

Each watcher arms itself on the :class:`~bridges.gevent._loop.AsyncioLoop` that made
it; the loop fires it from its dispatch pass in the hub greenlet.
"""

from __future__ import annotations

import asyncio
import os
import signal as _signal_module
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable

from greenlet import getcurrent
from greenlet import greenlet as _greenlet

from .._portal import PortalGreenlet
from ._compat import core_events_sentinel

if TYPE_CHECKING:
    from ._loop import AsyncioLoop

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
"""Every bit epoll reports for an fd registered (as ours are) for EPOLLIN and/or EPOLLOUT."""
_EVENTS_OF_EPOLL_MASK = tuple(
    (_READ if mask & _EPOLL_READABLE else 0) | (_WRITE if mask & _EPOLL_WRITABLE else 0)
    for mask in range(_EPOLL_REPORTED + 1)
)
_REGISTERED_EVENTS_OF_EPOLL_MASK = tuple(
    tuple(events & registered for events in _EVENTS_OF_EPOLL_MASK) for registered in range(4)
)
"""For a registered interest (``_READ | _WRITE`` bits): the events in each epoll mask."""
_EPOLL_MASK_OF_EVENTS = (0, _EPOLLIN, _EPOLLOUT, _EPOLLIN | _EPOLLOUT)
_BOUND_PRUNE = 8
_CALLBACK_CHECK_COUNT = 50
_REPOLLS = 4
_INLINE_PASSES = 50
"""How many hub passes in a row asyncio code may run inline (run_pending_from_asyncio)."""
_STAT_DEFAULT_INTERVAL = 1.0
"""Seconds between a stat watcher's polls when none (or a non-positive one) is given."""
_REAP_POLL_FIRST = 0.005
_REAP_POLL_MAX = 0.5
_STARTED_PRUNE = 1024


OWNER = "gevent"
"""The owner of gevent's fds and signal handlers in the hub's registries (the adapter's name)."""

_CORE_EVENTS = core_events_sentinel()


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
        self._priority = priority
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

    def _set_priority(self, value: Any) -> None:
        if self._active:
            # libev's rule: a watcher's priority is fixed while it is started.
            raise AttributeError("cannot change the priority of an active watcher; stop it first")
        self._priority = value

    priority = property(attrgetter("_priority"), _set_priority)
    """Kept as given (libev's ``MINPRI``..``MAXPRI``); asyncio runs what is due in order."""

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
    # the registration in place (see AsyncioLoop._io_start).  Nor do they
    # count the loop's references: the loop counts its started io watchers
    # when asked (FdPoller._referenced_ios), which is rare.

    def start(self, callback: Callable[..., Any], *args: Any, pass_events: bool = False) -> None:
        if pass_events or self._pass_events or not callable(callback):
            args = self._checked_args(callback, args, pass_events)
        self._callback = callback
        self._args = args
        self._active = True
        if not self._entry.covers[self.events]:
            self.loop._io_start(self)

    def _checked_args(
        self, callback: Callable[..., Any], args: tuple[Any, ...], pass_events: bool
    ) -> tuple[Any, ...]:
        """``start``'s slow path: refuse a callback that is not callable; gevent.core's events."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {callback!r}")
        if pass_events:
            args = (_CORE_EVENTS, *args)
            if not self._pass_events:
                # Only watchers that pass the events keep them (see FdPoller._poll_fds).
                self._revents = 0
        self._pass_events = pass_events
        return args

    def stop(self) -> None:
        self._active = False
        self._callback = None
        self._args = ()

    def _set_ref(self, value: bool) -> None:
        # Counted when asked (see the comment above start).
        self._ref = bool(value)

    ref = property(_Watcher._get_ref, _set_ref)


def _refuse_timeout_without_portal(args: tuple[Any, ...] | None) -> None:
    """``gevent.Timeout.start()`` on the asyncio side: only a portal-task can be interrupted.

    A Timeout throws into the greenlet that started it when it expires.  On
    the asyncio side without a portal that greenlet is the one running the
    loop: the throw would land in whatever the loop runs then and leave
    gevent's hub stuck in the middle of its pass.  Refuse at entry instead.
    (``update=`` is what ``Timeout.start`` passes to its timer, checked on
    gevent 23.9-26.9.)
    """
    target = args[0] if args else None
    if target is getcurrent() and type(target) is not PortalGreenlet:
        from ._api import HubOwnsLoopError

        raise HubOwnsLoopError(
            "gevent.Timeout was started from asyncio code that has no portal (a loop "
            "callback, a task started before gevent attached, or portals=False): when it "
            "expired it would interrupt whatever the loop runs then. Use asyncio.timeout() "
            "or asyncio.wait_for() around awaits, or run the code in a task of the hub with "
            "portals on (the default)."
        )


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
        if update is not None and self.loop.parked:
            _refuse_timeout_without_portal(self._args)
        if update:
            self.loop.update_now()
        self._schedule(self.after)
        if not self._args and self.loop._hosted:
            # Greenlet.start_later() starts the greenlet with a timer.
            owner = getattr(self._callback, "__self__", None)
            if isinstance(owner, _greenlet):
                self.loop._greenlet_callback(owner)

    def _schedule(self, delay: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = self.loop
        aio = loop._aio
        # loop.now() without its frame: live, or the standalone loop's cached clock.
        now = aio.time() if loop._hosted or loop._draining else loop._now
        self._handle = aio.call_at(now + max(delay, 0.0), loop._timer_due, self)

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
            callback(*args)
            return
        # libev stops a one-shot timer before its callback runs, and gevent
        # then drops the callback and args unless the callback restarted it.
        self._handle = None
        self._active = False
        if self._ref:
            self.loop._refs -= 1
        try:
            callback(*args)
        finally:
            if not self._active:
                self._callback = None
                self._args = None

    @property
    def at(self) -> float:
        handle = self._handle
        return handle.when() if handle is not None else self.loop.now() + self.after


class _Loopwise(_Watcher):
    """prepare / check / idle: run on every pass of the hub while active."""

    def _arm(self, **_: Any) -> None:
        watchers = self.loop._per_pass[self._kind]
        if self not in watchers:  # start() on a started watcher arms it again
            watchers.append(self)
            self.loop._loopwise += 1
        self.loop._schedule_pass()

    def _disarm(self) -> None:
        watchers = self.loop._per_pass[self._kind]
        if self in watchers:
            watchers.remove(self)
            self.loop._loopwise -= 1


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
        loop = self.loop
        if not loop._aio.is_closed():
            loop._call_threadsafe(loop._async_due, self)

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
    """Polls ``os.stat`` (asyncio has no file-change notification).

    As libev's stat watcher: ``interval`` is what was asked until the watcher
    starts, and from then the period actually polled at (a non-positive one
    means the default, :data:`_STAT_DEFAULT_INTERVAL`); ``_paths`` is the
    path as bytes, where gevent's watchers keep it.
    """

    _kind = "stat"

    def __init__(
        self,
        loop: AsyncioLoop,
        path: str | bytes,
        interval: float = 0.0,
        ref: bool = True,
        priority: Any = None,
    ) -> None:
        super().__init__(loop, ref, priority)
        self.path = path
        self._paths = os.fsencode(path)
        self.interval = interval
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
        if self.interval <= 0:
            self.interval = _STAT_DEFAULT_INTERVAL
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
    has ``_entry`` pointing here); ``sole`` is the only one of them, or None
    if there are none or several (the poll's fast path: a socket that only
    ever waits to read); ``mask`` is the registered interest (``_READ |
    _WRITE`` bits), kept while nobody waits and dropped when the fd turns
    out ready for no one; ``covers[events]`` says whether it includes
    ``events`` (``_Io.start``'s test) and ``events_of[epoll_mask]`` which of
    those an epoll report is about (the poll's), both set with the mask by
    :meth:`set_mask`.
    """

    __slots__ = ("covers", "events_of", "in_epoll", "mask", "sole", "watchers")

    def __init__(self) -> None:
        self.watchers: list[_Io] = []
        self.sole: _Io | None = None
        self.in_epoll = False
        self.set_mask(0)

    def set_mask(self, mask: int) -> None:
        self.mask = mask
        self.covers = _COVERS[mask]
        self.events_of = _REGISTERED_EVENTS_OF_EPOLL_MASK[mask]


_COVERS = tuple(tuple(mask & events == events for events in range(4)) for mask in range(4))
"""For a registered interest (``_READ | _WRITE`` bits): which events it includes."""


# The entry of every watcher not bound to a live one: it covers nothing,
# so starting such a watcher always takes the slow path (and binds it).
_UNBOUND = _FdEntry()
_UNBOUND.covers = (False, False, False, False)
