"""An eventlet hub built on an asyncio loop that someone else runs: asyncio is the master.

eventlet's native hubs are a greenlet that polls (epoll, kqueue, ...) and
switches to the greenthreads whose fds or timers are ready.  eventlet's own
asyncio hub makes a loop of its own and runs it *inside* that greenlet, one
``asyncio.wait_for`` per pass, so it cannot join a loop that is already
running.  This hub turns it around:

* every eventlet timer is one ``loop.call_at``, except that the timers due
  now (``spawn``, ``sleep(0)``) share one ``call_soon`` per loop pass; every
  fd listener one reader or writer registered through the bridges hub (so a
  second owner of the fd is refused);
* when one fires, the asyncio callback appends the work to a queue and
  *switches into the hub greenlet*, which runs it (a timer's callback, a
  listener's ``switch`` into the waiting greenthread; each may run
  greenthreads until they block again) and then switches back to the
  greenlet that runs the asyncio loop.  The hub greenlet never polls.

An asyncio task on the hub with a portal (:mod:`bridges._portal`, on by
default) runs its coroutine in a greenlet of its own: an eventlet blocking
call made there (``eventlet.sleep``, ``gt.wait()``, green socket I/O, ...)
reaches :meth:`LoopHub.switch`, which parks the task until eventlet wakes
that greenlet.  Elsewhere on the asyncio side (a loop callback, a task
without a portal) there is nothing to suspend: the call raises
:class:`HubOwnsLoopError` at once instead of stalling every task.
"""

from __future__ import annotations

from . import _quiet  # noqa: F401  (first: eventlet without its notice)

# isort: split

import asyncio
import contextlib
import contextvars
import sys
import traceback
import weakref
from collections import deque
from typing import Any, Callable, Deque, Protocol

from eventlet.hubs import hub as _base
from eventlet.hubs.timer import Timer
from greenlet import getcurrent
from greenlet import greenlet as raw_greenlet

from .. import _errors
from .._epoll import set_interest
from .._portal import PortalGreenlet, add_throw_hook, park, remove_throw_hook, switched_out
from . import _compat

__all__ = ["HubOwnsLoopError", "FdRegistry", "LoopHub"]

OWNER = "eventlet"
_switch = raw_greenlet.switch
_READ, _WRITE = _base.READ, _base.WRITE
_base_add = _base.BaseHub.add
_base_remove = _base.BaseHub.remove
_HANDLE = "_bridges_handle"
_STARTED_PRUNE = 1024
RECEIVED = "_bridges_received"
"""Set on a GreenThread whose outcome a bridge received (its exception is not reported)."""


class HubOwnsLoopError(_errors.HubOwnsLoopError):
    """An eventlet blocking call was made where there is no greenthread to block.

    Also a ``RuntimeError``, which is what eventlet raises for a blocking
    call inside its own hub greenlet.
    """


class FdRegistry(Protocol):
    """The part of :class:`bridges.Hub` the eventlet hub registers its fds through."""

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None: ...
    def remove_reader(self, fd: Any, *, owner: str) -> bool: ...
    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None: ...
    def remove_writer(self, fd: Any, *, owner: str) -> bool: ...


Report = Callable[[BaseException, str], None]


def _blocking_message(what: str) -> str:
    return (
        f"an eventlet blocking call ({what}) was made from asyncio code that has no portal "
        "to suspend: a loop callback (no task), a task started before eventlet attached, or "
        "any task with portals off (bridges.run(..., portals=False) / "
        "bridges.Hub(portals=False)). There is no greenthread to suspend: blocking would "
        "stall every task. Make the call from a task of the hub with portals on (the "
        "default), await instead (await bridges.awaitable(greenthread_or_event), "
        "await asyncio.sleep(...), asyncio.timeout(...)), or run the blocking code in a "
        "greenthread: await bridges.awaitable(eventlet.spawn(f))."
    )


_EPOLLIN, _EPOLLPRI, _EPOLLOUT, _EPOLLERR, _EPOLLHUP = 0x001, 0x002, 0x004, 0x008, 0x010
_EPOLLONESHOT = 1 << 30
# As eventlet's poll hub: errors and hang-ups wake both directions, so that
# the waiting greenthread's next call sees them.
_EPOLL_READ = _EPOLLIN | _EPOLLPRI | _EPOLLERR | _EPOLLHUP
_EPOLL_WRITE = _EPOLLOUT | _EPOLLERR | _EPOLLHUP


def _new_epoll() -> Any:
    """A private epoll from the unpatched ``select`` module, or None where there is none."""
    from eventlet.patcher import original

    select = original("select")
    return select.epoll() if hasattr(select, "epoll") else None


def _is_gevent_greenlet(glet: raw_greenlet) -> bool:
    gevent_hub = sys.modules.get("gevent.hub")
    return gevent_hub is not None and isinstance(glet.parent, gevent_hub.Hub)


class LoopHub(_compat.AsyncioHubBase):
    """eventlet's hub interface on the bridges hub's asyncio loop.

    A subclass of eventlet's own asyncio hub, so that eventlet's asyncio
    helpers (``await greenthread``, ``eventlet.asyncio.spawn_for_awaitable``)
    accept it; but it never makes, sets or runs a loop of its own.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fds: FdRegistry, report: Report) -> None:
        _base.BaseHub.__init__(self, clock=loop.time)
        self.loop = loop
        self._fds = fds
        self._report = report
        self._ready: Deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.asyncio_side: raw_greenlet = getcurrent()
        """The greenlet that runs the asyncio loop (attach runs there): where the hub
        greenlet parks, and the one place eventlet must never block."""
        self._back: raw_greenlet | None = None
        """The greenlet that entered eventlet (the asyncio side, or a portal-task's
        greenlet): where the hub greenlet, or a greenthread resumed directly, returns."""
        self._switching_out: tuple[PortalGreenlet, Timer] | None = None
        """A portal-task's greenlet and the wake-up it scheduled for itself without
        blocking on the hub: ``kill()`` does, then throws into the greenthread it kills."""
        acct = getattr(fds, "accounting", None)
        self._meter: Any = None if acct is None else acct.meter_for("eventlet")
        """eventlet's meter in the bridges hub's accounting (None when off): brackets each
        entry from asyncio into eventlet (a hub pass, or a greenthread resumed directly)."""
        self._in_hub = False
        self._direct = False
        self._print_failures = False
        """Whether ``eventlet.debug.hub_exceptions(True)`` asked for eventlet's printing."""
        self._pump_scheduled = False
        self.destroyed = False
        """Whether the bridges hub this eventlet hub belongs to has stopped."""
        self._registered: dict[str, set[int]] = {_base.READ: set(), _base.WRITE: set()}
        self._in_epoll: set[int] = set()
        self._armed: dict[int, int] = {}
        """The fds armed in the private epoll while they have listeners, with their
        event mask: an fd leaves when its event fires (one-shot), when its last
        listener goes, or when eventlet drops it."""
        self._epoll = _new_epoll()
        self._watch_epoll()
        self._timers: dict[int, Timer] = {}
        # Timers due now (spawn, sleep(0)): run in one entry of the hub
        # greenlet per loop pass, as eventlet's own hub runs its due timers,
        # instead of a loop handle each.
        self._due_now: Deque[Timer] = deque()
        self._due_scheduled = False
        # Greenthreads whose start is queued (spawn): awaiting one starts it now.
        self._starting: dict[int, Timer] = {}
        self._started: dict[int, weakref.ref[raw_greenlet]] = {}
        self._started_limit = _STARTED_PRUNE
        add_throw_hook(self._after_portal_throw)

    def _post_initialize(self) -> None:
        # eventlet's asyncio hub makes and sets a loop of its own here; this one has one.
        return None

    # -- running: asyncio callbacks switch in, the hub greenlet switches back --

    def run(self, *args: Any, **kwargs: Any) -> None:
        """The hub greenlet: run what asyncio handed over, then park on the asyncio side."""
        self.running = True
        self.stopping = False
        if self._back is None:
            # Started by a greenthread that ended (a kill() from a portal-task),
            # not by an entry of ours.
            self._entered_directly()
        try:
            while not self.stopping:
                self._drain()
                self._park()
        finally:
            self.running = False
            self.stopping = False

    def _park(self) -> None:
        self._in_hub = False
        back = self._back
        self._back = None
        try:
            # greenlet's own switch: a portal's greenlet routes its switch() to its task
            _switch(back if back is not None else self.asyncio_side)
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException as exc:  # noqa: BLE001 - a greenthread died with it while we were parked
            self._in_hub = True
            if self._back is None:
                self._entered_directly()
            self._failed(exc, "a greenthread")
            return
        self._in_hub = True
        if self._back is None:  # not entered by us (inline: every hub pass comes here)
            self._entered_directly()

    def _entered_directly(self) -> None:
        """After the hub greenlet resumed, not by an entry of ours: who switched away?

        Our entries (:meth:`_switch_in`, :meth:`resume_from_asyncio`) say where to
        return.  Otherwise a greenthread that was switched (or thrown) into
        directly blocked or ended: eventlet's ``kill()`` throws into the
        greenthread it kills.  Made from a portal-task's greenlet, that task's
        step is still under way on the asyncio side: go back to the greenlet,
        not into the middle of the step.  ``kill()`` from asyncio code returns
        at once, as it does without portals: the wake-up it scheduled for
        itself (eventlet's cooperative yield) is cancelled.
        """
        record = self._switching_out
        self._switching_out = None
        glet = switched_out(self.loop, record[0] if record is not None else None)
        if glet is None:
            return
        if record is not None and record[0] is glet:
            record[1].cancel()
        self._back = glet

    def _drain(self) -> None:
        ready = self._ready
        while ready or self.closed:
            while self.closed:
                self.close_one()
            if not ready:
                return
            func, args = ready.popleft()
            try:
                func(*args)
            except self.SYSTEM_EXCEPTIONS:
                raise
            except BaseException as exc:  # noqa: BLE001 - routed to the error sink, the hub goes on
                self._failed(exc, repr(func))

    def _enter(self) -> None:
        """From the asyncio side: switch into the hub greenlet, which runs the queue."""
        self._pump_scheduled = False
        if self._in_hub or self.destroyed or not self._ready:
            return
        self._switch_in()

    def _switch_in(self) -> None:
        """Switch into the hub greenlet (started or restarted if need be) until it parks."""
        glet = self.greenlet
        if glet.dead:
            self.ensure_greenlet()
            glet = self.greenlet
        side = self.asyncio_side
        if glet.parent is not side:
            # ValueError: a cycle (this greenlet descends from the hub greenlet).
            with contextlib.suppress(ValueError):
                glet.parent = side
        self._back = getcurrent()
        self._in_hub = True
        meter = self._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(self)
        try:
            glet.switch()
        finally:
            self._in_hub = False
            if outer is not None:
                meter.exit(outer)

    def run_from_asyncio(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` in the hub greenlet: now from asyncio code, soon from elsewhere."""
        self._ready.append((func, args))
        if self._in_hub or self.destroyed:
            return  # the running pass picks it up
        current = getcurrent()
        if current is self.asyncio_side or type(current) is PortalGreenlet:
            self._enter()
        elif not self._pump_scheduled:
            # From another framework's greenlet (gevent's): not a place to park
            # back to; the loop enters on its next iteration.
            self._pump_scheduled = True
            self.loop.call_soon(self._enter)

    def resume_from_asyncio(self, switch: Callable[..., Any], *args: Any) -> None:
        """From an asyncio callback: switch straight into a greenthread blocked in :meth:`switch`.

        One switch fewer than going through the hub greenlet: the greenthread
        runs until it blocks again; its ``hub.switch()`` then comes straight
        back here, or, when something is queued for the hub greenlet, resumes
        that greenlet, which runs the queue and parks back here.
        """
        current = getcurrent()
        if (
            self._in_hub
            or self.destroyed
            or (current is not self.asyncio_side and type(current) is not PortalGreenlet)
        ):
            self.run_from_asyncio(switch, *args)
            return
        if not self.greenlet:
            # Not started yet (or dead): start it, so that it is parked where
            # a greenthread that ends (or fails) goes, its parent.  A greenlet
            # that has not started passes what it is thrown on to its own
            # parent, the asyncio side, right here.
            self._switch_in()
        self._back = current
        self._in_hub = True
        self._direct = True
        meter = self._meter
        outer = None
        if meter is not None:
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(switch)
        try:
            switch(*args)
        finally:
            self._in_hub = False
            self._direct = False
            if outer is not None:
                meter.exit(outer)

    # -- errors ----------------------------------------------------------------

    def set_timer_exceptions(self, value: bool) -> None:
        """``eventlet.debug.hub_exceptions(state)``: whether failures are printed, as eventlet does.

        eventlet's hub prints each failed greenthread's or timer's traceback
        to stderr unless told not to; this hub reports them to the loop's
        exception handler instead (once, and not when someone receives the
        outcome).  Asked for explicitly, eventlet's printing is done as well.
        """
        self.debug_exceptions = value
        self._print_failures = bool(value)

    def _print(self, exc: BaseException) -> None:
        if self._print_failures:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
            sys.stderr.flush()

    def _failed(self, exc: BaseException, where: str) -> None:
        self._print(exc)
        gt = _compat.greenthread_in_traceback(exc.__traceback__)
        if gt is not None:
            if getattr(gt, RECEIVED, False) or _compat.exit_has_receiver(gt):
                return
            where = repr(gt)
        self._report(exc, f"bridges: unhandled error in eventlet: {where} failed")

    def squelch_exception(self, fileno: int, exc_info: Any) -> None:
        self._report(exc_info[1], f"bridges: unhandled error in eventlet on fd {fileno}")
        try:
            self.remove_descriptor(fileno)
        except Exception as exc:  # noqa: BLE001 - reported; the hub goes on
            self._report(exc, f"bridges: eventlet could not remove fd {fileno}")

    def squelch_generic_exception(self, exc_info: Any) -> None:
        self._print(exc_info[1])
        self._report(exc_info[1], "bridges: unhandled error in eventlet")

    def squelch_timer_exception(self, timer: Any, exc_info: Any) -> None:
        self._failed(exc_info[1], repr(timer))

    # -- greenthreads block by switching to the hub ------------------------------

    def switch(self) -> Any:
        current = getcurrent()
        glet = self.greenlet
        if (
            not self._direct
            and current.parent is glet
            and not glet.dead
            and getattr(current, "switch_out", None) is None
        ):
            # The hot path of a pass (a greenthread the hub greenlet resumed
            # blocks again: an fd wait, a sleep): back to the hub greenlet, as
            # eventlet's own switch() does, without its checks for the cases
            # below.
            return glet.switch()
        if (
            self._direct
            and current.parent is self.greenlet
            and not self._ready
            and not self.closed
            and getattr(current, "switch_out", None) is None
        ):
            # The round trip's hot path (be.wait, Event.wait, a socket's
            # EAGAIN): resumed straight from asyncio and nothing is queued for
            # the hub greenlet, so go straight back to the asyncio side.  A
            # greenthread of this hub is neither the asyncio side nor gevent's.
            # Back to the greenlet that resumed it (_return_back, inline).
            self._direct = False
            back = self._back
            self._back = None
            return _switch(back if back is not None else self.asyncio_side)
        if type(current) is PortalGreenlet and not self.destroyed:
            # An asyncio task's own greenlet (bridges._portal): park the task
            # until eventlet wakes the greenlet.
            self._switching_out = None
            return park(current.portal, self._pass_from_portal)
        if current is self.asyncio_side:
            raise HubOwnsLoopError(_blocking_message("sleep, wait, socket I/O, be.wait, ..."))
        if _is_gevent_greenlet(current):
            raise HubOwnsLoopError(
                "an eventlet blocking call was made in a gevent greenlet: only eventlet's "
                "greenthreads can block on eventlet's hub (a gevent greenlet blocks on gevent's). "
                "Wait through asyncio instead: bg.wait(greenthread_or_event) in the greenlet, "
                "or run the eventlet code in a greenthread (eventlet.spawn)."
            )
        if self._direct and not self._ready and not self.closed:
            # Resumed straight from asyncio (resume_from_asyncio) and nothing is
            # queued for the hub greenlet: go straight back to the asyncio side.
            self._direct = False
            glet = self.greenlet
            if current.parent is not glet and not glet.dead:
                with contextlib.suppress(ValueError):
                    current.parent = glet
            if getattr(current, "switch_out", None) is None:
                return self._return_back()
        return super().switch()

    def _return_back(self) -> Any:
        """From a greenthread resumed directly: back to the greenlet that resumed it."""
        back = self._back
        self._back = None
        return _switch(back if back is not None else self.asyncio_side)

    def _after_portal_throw(self) -> None:
        """A greenthread threw into a portal's greenlet (``kill()``): it yields, as natively.

        eventlet's ``kill()`` schedules the killer's own wake-up, then throws
        into the victim and expects to be switched back to by that wake-up;
        a portal's greenlet takes the exception without running, so without
        this the killer would go on at once and be woken later by surprise.
        """
        current = getcurrent()
        if not self.destroyed and current.parent is self.greenlet and current is not self.greenlet:
            self.switch()

    def _pass_from_portal(self) -> None:
        """:func:`bridges._portal.park`'s ``run_due``: the work due now, in this step.

        A greenthread's blocking call switches to eventlet's hub, which runs
        the timers due now (``sleep(0)``'s wake-up, ``Event.send``'s, a
        spawned greenthread's start) before anything polls; a portal-task's
        does the same here, so that such a wait can end within the step.
        """
        if self._in_hub or self.destroyed:
            return
        if self._due_now:
            self._run_due_now()
        elif self._ready:
            self._switch_in()

    def abort(self, wait: bool = False) -> None:
        # The hub greenlet only parks; the bridges hub decides when the loop stops.
        return None

    # -- timers ------------------------------------------------------------------

    def add_timer(self, timer: Timer) -> float:
        seconds = timer.seconds
        when = self.clock() + seconds
        callback = _compat.timer_callback(timer)
        target = getattr(callback, "__self__", None)
        if isinstance(target, raw_greenlet):
            if target is self.asyncio_side and not self._in_hub:
                return self._refuse_asyncio_side(timer, callback, when)
            if (
                type(target) is PortalGreenlet
                and seconds <= 0
                and target is getcurrent()
                and getattr(callback, "__func__", None) is PortalGreenlet.switch
            ):
                self._switching_out = (target, timer)
            if not target and target.gr_context is None and not target.dead:
                # A greenthread being started (spawn, spawn_n, spawn_after,
                # GreenPool): it runs in a copy of the spawner's context, as an
                # asyncio task does (a new greenlet's is otherwise empty).
                target.gr_context = contextvars.copy_context()
                self._remember(target)
                if seconds <= 0:
                    self._starting[id(target)] = timer
        if self.destroyed:
            timer.called = True
            return when
        if seconds <= 0:
            self._due_now.append(timer)
            if not self._due_scheduled:
                self._due_scheduled = True
                self.loop.call_soon(self._run_due_now)
            return when
        setattr(timer, _HANDLE, self.loop.call_at(when, self._timer_due, timer))
        self._timers[id(timer)] = timer
        return when

    def _run_due_now(self) -> None:
        """The loop callback that hands the timers due now to the hub greenlet, in order.

        eventlet's hub polls its fds before it runs the timers added since its
        last poll, so ``sleep(0)`` first lets the greenthreads whose fds are
        ready run (a server's accept loop sees its socket shut down before the
        sleeper goes on to close it).  The private epoll is polled first here
        too: the loop's own poll may not have reported it in this pass yet.
        """
        self._due_scheduled = False
        due = self._due_now
        timers = []
        while due:
            timer = due.popleft()
            if self._starting:
                self._forget_start(timer)
            if not timer.called:  # else cancelled, or started early by start_now
                timers.append(timer)
        if not timers:
            return
        ready = self._ready
        if self._epoll is not None and (self.listeners[_READ] or self.listeners[_WRITE]):
            ready.append((self._poll, ()))
        last = timers.pop()
        for timer in timers:
            ready.append((timer, ()))
        self.run_from_asyncio(last)

    def _remember(self, glet: raw_greenlet) -> None:
        # eventlet keeps no registry of its greenthreads; the hub remembers the
        # ones it starts, so that the bridges hub can kill them when it stops.
        started = self._started
        started[id(glet)] = weakref.ref(glet)
        if len(started) > self._started_limit:
            for key, ref in list(started.items()):
                alive = ref()
                if alive is None or alive.dead:
                    del started[key]
            self._started_limit = max(_STARTED_PRUNE, 2 * len(started))

    def live_greenthreads(self) -> list[raw_greenlet]:
        """The greenthreads started on this hub that have not finished (or not started) yet."""
        alive = []
        for ref in list(self._started.values()):
            glet = ref()
            if glet is not None and not glet.dead:
                alive.append(glet)
        return alive

    def _refuse_asyncio_side(self, timer: Timer, callback: Any, when: float) -> float:
        if callback == self.asyncio_side.throw:
            timer.called = True
            raise HubOwnsLoopError(
                "an eventlet.Timeout was started in asyncio code, where it would be thrown "
                "into the event loop itself. In a coroutine use asyncio.timeout() (or "
                "asyncio.wait_for); keep eventlet.Timeout inside greenthreads."
            )
        # A wake-up of the asyncio side (kill()'s "switch back to me", sleep's
        # timer): nothing to wake, since the asyncio side never blocks.
        timer.called = True
        return when

    def start_now(self, glet: raw_greenlet) -> None:
        """Run the queued start of ``glet`` (spawned, not started yet) now instead of later."""
        timer = self._starting.pop(id(glet), None)
        if timer is None or timer.called:
            return
        due = self._due_now
        if due and due[-1] is timer:
            due.pop()  # else the pass's batch skips it: it will have been called
        # Straight into the greenthread: it runs until it blocks (back here at
        # once) or ends (back through the hub greenlet, its parent).
        self.resume_from_asyncio(timer)

    def _timer_due(self, timer: Timer) -> None:
        timer.__dict__.pop(_HANDLE, None)
        self._timers.pop(id(timer), None)
        if self._starting:
            self._forget_start(timer)
        if not timer.called:
            self.run_from_asyncio(timer)

    def timer_canceled(self, timer: Timer) -> None:
        handle = timer.__dict__.pop(_HANDLE, None)
        if handle is not None:
            self._timers.pop(id(timer), None)
            handle.cancel()
        if self._starting:
            self._forget_start(timer)

    def _forget_start(self, timer: Timer) -> None:
        key = id(getattr(_compat.timer_callback(timer), "__self__", None))
        if self._starting.get(key) is timer:
            del self._starting[key]

    # -- fds ---------------------------------------------------------------------
    #
    # eventlet's listeners go into a private epoll, as in eventlet's own epoll
    # hub, and the bridges hub watches that epoll's fd (owned by "eventlet" in
    # its fd registry).  eventlet registers and unregisters an fd on every
    # EAGAIN; doing that with asyncio's selector (a handle, a key and a
    # modify per call) cost 40% of an echo server's CPU, an epoll_ctl does
    # not.  The fds are armed one-shot (EPOLLONESHOT): the event that ends a
    # wait disarms its fd, so the wait's end needs no epoll_ctl, and the next
    # wait re-arms it with one (eventlet's epoll hub makes two per wait); a
    # listener the event did not end is re-armed after the pass, so eventlet's
    # level-triggered contract holds.  And an fd that asyncio code watches
    # too is not taken away from it: both are woken.  Where there is no
    # epoll, each fd is registered with the loop through the bridges hub.

    def _watch_epoll(self) -> None:
        epoll = self._epoll
        if epoll is not None:
            self._fds.add_reader(epoll.fileno(), self._epoll_ready, owner=OWNER)

    def add(self, evtype: str, fileno: int, cb: Any, tb: Any, mark_as_closed: Any) -> Any:
        listener = _base_add(self, evtype, fileno, cb, tb, mark_as_closed)
        try:
            listeners = self.listeners
            mask = (_EPOLL_READ if fileno in listeners[_READ] else 0) | (
                _EPOLL_WRITE if fileno in listeners[_WRITE] else 0
            )
            if self._armed.get(fileno) != mask:
                self._sync(fileno)
        except BaseException:
            _base_remove(self, listener)
            raise
        return listener

    def remove(self, listener: Any) -> None:
        _base_remove(self, listener)
        fileno = listener.fileno
        if self._epoll is None:
            self._sync(fileno)
            return
        listeners = self.listeners
        if fileno in listeners[_READ] or fileno in listeners[_WRITE]:
            if fileno not in self._armed:
                self._sync(fileno)  # its event disarmed it; another listener still waits
        else:
            # Left in the epoll: disarmed if its event fired (the usual case:
            # the wait is over), else its one stale event finds no listener.
            # No epoll_ctl for a wait that ended, where eventlet's epoll hub
            # makes one.
            self._armed.pop(fileno, None)

    def remove_descriptor(self, fileno: int) -> None:
        _base.BaseHub.remove_descriptor(self, fileno)
        epoll = self._epoll
        if epoll is None:
            self._sync(fileno)
            return
        self._armed.pop(fileno, None)
        if fileno in self._in_epoll:
            self._in_epoll.discard(fileno)
            with contextlib.suppress(OSError, ValueError):  # already closed
                epoll.unregister(fileno)

    def _sync(self, fileno: int) -> None:
        """Make the poller's interest in ``fileno`` match eventlet's listeners.

        In the private epoll, an fd with listeners is armed one-shot: its
        event disarms it, and the next wait arms it again with one
        ``epoll_ctl``.  An fd without listeners is left as it is.
        """
        if self.destroyed:
            return
        reading = fileno in self.listeners[_READ]
        writing = fileno in self.listeners[_WRITE]
        epoll = self._epoll
        if epoll is None:
            self._sync_loop(fileno, _READ, reading)
            self._sync_loop(fileno, _WRITE, writing)
            return
        mask = (_EPOLL_READ if reading else 0) | (_EPOLL_WRITE if writing else 0)
        if not mask:
            self._armed.pop(fileno, None)
            return
        flags = mask | _EPOLLONESHOT
        in_epoll = self._in_epoll
        set_interest(epoll, fileno, flags, fileno in in_epoll)
        in_epoll.add(fileno)
        self._armed[fileno] = mask

    def _epoll_ready(self) -> None:
        """The loop's reader callback for the private epoll (on the asyncio side)."""
        self._ready.append((self._poll, ()))
        if not self._in_hub and not self.destroyed:
            self._switch_in()

    def _poll(self) -> None:
        """In the hub greenlet: wake the listeners of the fds the private epoll reports."""
        epoll = self._epoll
        if epoll is None or self.destroyed:
            return
        readers = self.listeners[_READ]
        writers = self.listeners[_WRITE]
        armed = self._armed
        # Collected first, as eventlet's poll hub does: one callback must not
        # invalidate another's event.
        events = epoll.poll(0)
        due = []
        for fileno, mask in events:
            armed.pop(fileno, None)  # one-shot: disarmed until a wait arms it again
            if mask & _EPOLL_READ:
                listener = readers.get(fileno)
                if listener is not None:
                    due.append((listener, fileno))
            if mask & _EPOLL_WRITE:
                listener = writers.get(fileno)
                if listener is not None:
                    due.append((listener, fileno))
        self._fire(due)
        for fileno, _ in events:
            # A listener its event did not wake (the other direction, a
            # listener that stays), or one that is waiting again, is armed.
            if fileno not in armed and (fileno in readers or fileno in writers):
                self._sync(fileno)

    def _fire(self, due: list[tuple[Any, int]]) -> None:
        """Call each listener's callback; one that fails is reported and its fd dropped."""
        for listener, fileno in due:
            try:
                listener.cb(fileno)
            except self.SYSTEM_EXCEPTIONS:
                raise
            except BaseException:  # noqa: BLE001 - eventlet's rule: report and drop the fd
                self.squelch_exception(fileno, sys.exc_info())

    def _sync_loop(self, fileno: int, evtype: str, wanted: bool) -> None:
        registered = self._registered[evtype]
        if wanted == (fileno in registered):
            return
        reading = evtype is _base.READ
        if wanted:
            add = self._fds.add_reader if reading else self._fds.add_writer
            add(fileno, self._fd_ready, evtype, fileno, owner=OWNER)
            registered.add(fileno)
        else:
            registered.discard(fileno)
            remove = self._fds.remove_reader if reading else self._fds.remove_writer
            remove(fileno, owner=OWNER)

    def _fd_ready(self, evtype: str, fileno: int) -> None:
        self.run_from_asyncio(self._fire_listener, evtype, fileno)

    def _fire_listener(self, evtype: str, fileno: int) -> None:
        listener = self.listeners[evtype].get(fileno)
        if listener is None:
            self._sync(fileno)
        else:
            self._fire([(listener, fileno)])

    # -- end -------------------------------------------------------------------

    def destroy(self) -> None:
        """Release every fd and timer; later calls are answered harmlessly."""
        for evtype in (_base.READ, _base.WRITE):
            for fileno in list(self._registered[evtype]):
                self._sync_loop(fileno, evtype, False)
        epoll = self._epoll
        if epoll is not None:
            self._epoll = None
            if not self.loop.is_closed():
                self._fds.remove_reader(epoll.fileno(), owner=OWNER)
            epoll.close()
        for timer in [*self._timers.values(), *self._due_now]:
            timer.cancel()
        self._due_now.clear()
        self._starting.clear()
        self.destroyed = True
        remove_throw_hook(self._after_portal_throw)
        self._ready.clear()
        self._started.clear()
