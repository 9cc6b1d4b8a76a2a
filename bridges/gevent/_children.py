"""Signals and child processes of the gevent loop, through the hub's signal registry."""

from __future__ import annotations

import os
import signal as _signal_module

from ._compat import original_attr as _original
from ._compat import real_signal_calls
from ._watchers import (
    OWNER,
    _Child,
    _Signal,
)


class SignalsAndChildren:
    """gevent's signal and child watchers (a mixin of AsyncioLoop)."""

    # -- signals and children ---------------------------------------------

    def _signal_start(self, watcher: _Signal) -> None:
        watchers = self._signals.get(watcher.signum)
        if watchers is None:
            registry = self._fd_registry
            with real_signal_calls():
                if registry is not None:
                    registry.add_signal_handler(
                        watcher.signum, self._signal_due, watcher.signum, owner=OWNER
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
        with real_signal_calls():
            if registry is not None:
                registry.remove_signal_handler(signum, owner=OWNER)
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
        elif self._reaper.polling:
            self._reaper.soon()
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
            self._reaper.soon()

    def _child_stop(self, watcher: _Child) -> None:
        watchers = self._children.get(watcher.pid)
        if watchers and watcher in watchers:
            watchers.remove(watcher)
            if not watchers:
                del self._children[watcher.pid]
        if not self._children:
            if self._sigchld is not None:
                self._sigchld.stop()
            self._reaper.cancel()

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
