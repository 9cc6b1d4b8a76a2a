"""The dispatch core of the gevent loop: getting gevent's work run in the hub greenlet."""

from __future__ import annotations

import sys
from typing import Any, Callable

from greenlet import getcurrent
from greenlet import greenlet as _greenlet

from ._watchers import (
    _CALLBACK_CHECK_COUNT,
    _INLINE_PASSES,
    _REPOLLS,
    _Async,
    _Callback,
    _Io,
    _new_object,
    _switch,
    _Timer,
    _Watcher,
)


class DispatchCore:
    """Switches into gevent's hub greenlet to run what is due, and back (a mixin of AsyncioLoop)."""

    _loopwise = 0
    """How many prepare, check and idle watchers are started: each pass asks (once if none)."""

    # -- dispatch: getting gevent work run in the hub greenlet ---------------

    def _schedule_pass(self) -> None:
        if self._pass_scheduled or self._destroyed:
            return
        self._pass_scheduled = True
        self._aio.call_soon(self._enter)

    def _enter(self) -> None:
        """asyncio callback: let the hub greenlet run what is due.

        The asyncio side has had its turn, so the inline-pass budget (see
        :meth:`run_pending_from_asyncio`) is refilled.  A hosted pass with
        nothing to do is skipped: the work this handle was scheduled for
        usually ran already, inline, in the step that awaited it.
        """
        self._pass_scheduled = False
        self._inline_budget = _INLINE_PASSES
        if self._hosted and not (self._queue or self._poll_due or self._closing or self._loopwise):
            self.iteration += 1
            return
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
        # _Callback(func, args) without the __init__ frame, as run_callback does.
        callback = _new_object(_Callback)
        callback.callback = func
        callback.args = args
        callback.pending = True
        self._queue.append(callback)
        self._enter_now()

    def resume_from_asyncio(self, switch: Callable[..., Any], *args: Any) -> None:
        """From an asyncio callback: switch straight into a greenlet blocked on the hub.

        ``switch`` is the ``switch`` of a greenlet of this hub blocked in
        ``hub.switch()`` (``bg.wait``).  A pass would cost a switch into the
        hub greenlet and back, and the pass itself: here the hub greenlet
        stays parked, and the greenlet's next blocking call comes straight
        back (the parked hub's switch guard calls
        :meth:`switch_out_directly`).  ``parked`` is False meanwhile: this is
        a greenlet, free to block.  If the hub greenlet runs in between (the
        greenlet ended, or queued work), it parks back here.
        """
        if not self.parked or self._destroyed:
            self.run_soon_from_asyncio(switch, *args)
            return
        self._direct = True
        self._entered_from = getcurrent()
        self.parked = False
        meter = self._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(switch)
        try:
            switch(*args)
        finally:
            self._direct = False
            self._entered_from = None
            self.parked = True
            if outer is not None:
                meter.exit(outer)

    def switch_out_directly(self) -> Any:
        """A greenlet blocks while :meth:`resume_from_asyncio` runs it: back to the asyncio side.

        Through the hub greenlet when gevent work is due (what the greenlet
        queued, a ready fd): that runs now, as after any blocking call, and
        the hub parks back on the asyncio side.  Returns what the greenlet is
        woken with.  Calls the greenlet's ``switch_out`` first, as gevent's
        ``Hub.switch`` does.
        """
        switch_out = getattr(getcurrent(), "switch_out", None)
        if switch_out is not None:
            switch_out()
        if self._queue or self._poll_due or self._closing or self._loopwise:
            return _switch(self._hub_glet)
        return _switch(self._entered_from)

    def run_pending_from_asyncio(self) -> None:
        """From asyncio code: run the hub's queued callbacks now, not on the next iteration.

        Only on the asyncio side (the hub parked, which only a hosted loop
        does), and only when there is something to run; from a greenlet the
        pass is already under way.  Native gevent's blocking calls switch to
        the hub at once, which runs its pending callbacks before anything
        polls; awaiting gevent work from a coroutine does the same, up to
        ``_INLINE_PASSES`` times in a row: then the asyncio loop gets its turn
        (its next call of :meth:`_enter` refills the budget), so that a
        coroutine that keeps awaiting green work cannot starve the other tasks.
        """
        if self.parked and self._queue and self._inline_budget and not self._destroyed:
            hub = self._hub_glet
            if hub is not None:
                # _enter_now, inline: parked, so this is not the hub greenlet.
                self._inline_budget -= 1
                self._entered_from = getcurrent()
                _switch(hub)

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
        if not self._hosted:
            self._now = self._aio.time()  # libev's cached clock (AsyncioLoop.now)
        queue = self._queue
        per_pass = self._per_pass
        self._draining = True
        meter = self._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(self)
        try:
            if self._loopwise and per_pass["prepare"]:
                self._run_watchers(per_pass["prepare"])
            repolls = 0
            if self._poll_due:
                # The io watchers of the ready fds fire here, or queue behind
                # what is queued (see FdPoller._poll_fds).
                if self._poll_fds() > 1:
                    repolls = _REPOLLS
                if self._unwinding is not None:
                    return
            count = _CALLBACK_CHECK_COUNT
            deadline = 0.0
            while True:
                if not queue:
                    if not repolls or not self._repoll():
                        break
                    if self._unwinding is not None:
                        return
                    repolls -= 1
                    continue
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
            if self._loopwise:
                if per_pass["check"]:
                    self._run_watchers(per_pass["check"])
                if per_pass["idle"] and not queue:
                    self._run_watchers(per_pass["idle"])
        finally:
            self._draining = False
            if outer is not None:
                meter.exit(outer)
        if self._closing:
            self._register_deferred()
        if queue or self._loopwise:
            self._schedule_pass()
        if not self._hosted and (self._stop_after_pass or self._idle_now()):
            self._aio.stop()

    def _repoll(self) -> bool:
        """Poll the private epoll again before parking; True if it found ready fds.

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
        return self._poll_fds() > 0

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
