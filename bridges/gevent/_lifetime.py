"""Running and ending the gevent loop: hosted or standalone runs, ref counts, reinit, destroy."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable

from greenlet import getcurrent

from .._errors import BridgeError
from ._compat import renew_after_fork
from ._watchers import (
    _switch,
)


class ForkNotSupportedError(BridgeError, RuntimeError):
    """``fork()`` while the hub runs gevent on a loop that cannot be renewed in the child.

    Raised in the child by ``gevent.hub.reinit()`` (which ``gevent.fork()``
    and a patched ``os.fork()`` call) on uvloop, which keeps its poller and
    self-pipe in C.  Run on the stdlib loop, or fork before ``bridges.run``.
    """


class Lifetime:
    """gevent's ``ILoop`` running, reference counting and destruction (a mixin of AsyncioLoop)."""

    # -- ILoop: running -----------------------------------------------------

    def run(self, nowait: bool = False, once: bool = False) -> None:
        """Called by gevent's ``Hub.run`` in the hub greenlet."""
        self._hub_glet = getcurrent()
        self.parked = False
        if not self._hosted:
            self._run_standalone(nowait, once)
            return
        guard = self._switch_guard
        namespace, refuse = guard if guard is not None else ({}, None)
        namespace.pop("switch", None)
        run_pass = self._pass
        while True:
            run_pass()
            # Park: hand control back to the asyncio side until it enters again.
            back = self._entered_from
            self._entered_from = None
            self.parked = True
            if refuse is not None:
                namespace["switch"] = refuse
            _switch(back)
            self.parked = False
            self._direct = False  # entered while resume_from_asyncio ran a greenlet: a pass now
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

    def _run_standalone(self, nowait: bool, once: bool) -> None:
        """libev's ``run``: until nothing is referenced; ``nowait``: one poll that does
        not wait; ``once``: wait for something to happen, run that pass, return."""
        aio = self._aio
        if nowait:
            aio.call_soon(aio.stop)
        elif self._idle_now():
            return
        self._stop_after_pass = once
        try:
            aio.run_forever()
        finally:
            self._stop_after_pass = False
        unwinding, self._unwinding = self._unwinding, None
        if unwinding is not None:
            raise unwinding

    def _idle_now(self) -> bool:
        """libev's ``activecnt == 0`` with nothing pending: the standalone loop's run ends."""
        if self._queue or self._refs > 0:
            return False
        if not self._refs:
            # Once per pass: stop at the first started io watcher.
            return next(self._referenced_ios(), None) is None
        return self.activecnt <= 0

    @property
    def activecnt(self) -> int:
        """libev's count: the started watchers that have ``ref``, plus ``ref()`` - ``unref()``."""
        return self._refs + sum(1 for _ in self._referenced_ios())

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
    def pendingcnt(self) -> int:
        return len(self._queue)

    def verify(self) -> None:
        """Nothing to verify: asyncio keeps its own invariants."""

    def fileno(self) -> int | None:
        return None

    def debug(self) -> list[str]:
        return [f"{self!r}", f"referenced watchers: {self.activecnt}, queued: {len(self._queue)}"]

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
        self._loopwise = 0
        if not self._hosted and not self._aio.is_closed():
            self._aio.close()
