"""The Twisted reactor that runs on the hub's asyncio loop.

Twisted's stock ``AsyncioSelectorReactor`` assumes it owns the loop: it binds
to one loop for ever, ``stop()`` ends in ``loop.stop()`` (which kills
``asyncio.run``), its thread pool is joined on the loop's thread (a worker
waiting in ``blockingCallFromThread`` then deadlocks the exit), and it
registers fds straight with the loop, so another framework can silently take
them over.  :class:`HubReactor` keeps the stock reactor's behaviour for
Twisted code and changes exactly those points:

* it is *bound* to a hub at attach and *unbound* at detach, so the one
  process-global reactor object follows each new loop of repeated
  ``bridges.run`` calls;
* ``stop()`` asks the hub to stop; the hub's stop sequence then fires the
  shutdown triggers (see :meth:`HubReactor.shutdown`);
* readers and writers go through the hub's fd registry (owner ``"twisted"``);
* its pool threads are daemon threads and are joined off the loop's thread.

and removes the stock reactor's own bookkeeping where it costs most (see
docs/twisted.md for the measurements): one loop callback per ``DelayedCall``
instead of a second heap, "soon-write" for Twisted's own TCP/UNIX
connections instead of toggling write interest on every write, a log
context built once per fd registration instead of once per event, and TCP
transports whose ``write()`` sends at once when nothing is queued (``_tcp.py``).

Every access to a private attribute of Twisted or asyncio is isolated in
``_compat.py``, with the versions it was checked on; :class:`HubReactor`
also overrides the private methods ``_initThreadPool``, ``_stopThreadPool``,
``_cancelCallLater`` and ``_moveCallLaterSooner`` of ``ReactorBase``, and
``_tcp.Connector`` overrides ``tcp.Connector._makeTransport``.
tests/test_twisted_compat.py tests the behaviour each one is relied on for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import error, process
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.base import DelayedCall

from .._errors import BridgeError
from .._reaper import ChildReaper
from . import _tcp
from ._compat import (
    _abandon_event,
    _disconnect_selectable,
    _ensure_trigger,
    _failure_logger,
    _fd_tables,
    _internal_readers,
    _log_context_stack,
    _mark_crashed,
    _mark_stopped,
    _read_or_write,
    _really_start_running,
    _reset_run_state,
    _set_loop,
    _take_threadpool_triggers,
)
from ._errors import HubOwnsLoopError, not_bound
from ._timers import Timers
from ._writes import _NO_HANDLE, _WRITING, OWNER, FdsWithSoonWrite, ReadingNow

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["OWNER", "HubReactor"]

log = logging.getLogger("bridges.twisted")

_FIRST_REAP = 0.001
_LAST_REAP = 0.05
"""Seconds between checks for exited children: from the first to the longest interval."""


UNBOUND_FORMS: dict[str, Callable[..., Any]] = {}
"""What each method :func:`_bound_only` refuses between runs does when it is not refused."""


def _bound_only(name: str, unbound: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """``unbound`` (the stock reactor's ``name``), refused with NotAttachedError between runs.

    For the calls that open an fd and then register it: between runs the
    registration would fail after the socket was bound (leaking it) or after
    the child was spawned.  ``connectTCP`` and friends are not wrapped: they
    start connecting with ``callLater(0, ...)``, which between runs waits for
    the next run, as it waits for ``reactor.run()`` in plain Twisted.
    """
    stock = getattr(AsyncioSelectorReactor, name) if unbound is None else unbound
    UNBOUND_FORMS[name] = stock

    @functools.wraps(stock)
    def method(self: HubReactor, *args: Any, **kwargs: Any) -> Any:
        if self._hub is None:
            raise not_bound(name)
        return stock(self, *args, **kwargs)

    return method


def _listen_tcp(
    reactor: HubReactor, port: int, factory: Any, backlog: int = 50, interface: str = ""
) -> Any:
    """Twisted's ``listenTCP``; the connections' ``write()`` sends at once when it can.

    As asyncio's transports do, and only where that cannot be told from
    Twisted's queued write flushed at once ("TCP writes sent at once" in
    docs/twisted.md).
    """
    listening = _tcp.Port(port, factory, backlog, interface, reactor)
    listening.startListening()
    return listening


def _meter(hub: Hub) -> Any:
    return None if hub.accounting is None else hub.accounting.meter_for(OWNER)


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    """Thread factory of the reactor's pool: a stuck worker must not hang interpreter exit."""
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class HubReactor(Timers, FdsWithSoonWrite, AsyncioSelectorReactor):
    """``AsyncioSelectorReactor`` whose loop, lifetime and fds belong to a bridges hub.

    The hub installs it when Twisted attaches; nobody constructs it.  Its
    public name is for software that checks the reactor's class: Scrapy
    refuses any reactor but the one its ``TWISTED_REACTOR`` setting names, so
    a crawl on the hub sets ``TWISTED_REACTOR = "bridges.twisted.HubReactor"``.
    """

    soonWrite = True
    """Try writes of Twisted's own TCP/UNIX connections on the next loop pass
    (see :meth:`_writeSoon`); set to False to always wait for writability."""

    def __init__(self, hub: Hub) -> None:
        self._hub: Hub | None = hub
        self._hubLoop: asyncio.AbstractEventLoop | None = hub.loop
        """The bound hub's loop, None between runs (the stock reactor's own copy is private)."""
        self._poolStopped: list[asyncio.Future[None]] = []
        self._timers: dict[DelayedCall, asyncio.Handle | None] = {}
        self._soonWriters: dict[Any, Any] = {}
        """Soon-writers: a pending ``call_soon`` handle, _NO_HANDLE or _WRITING."""
        self._reading = ReadingNow()
        self._logContextStack = _log_context_stack()
        self._timed: list[tuple[float, int, DelayedCall]] = []
        self._sequence = itertools.count()
        self._reaper = ChildReaper(
            lambda: self._hubLoop,
            process.reapAllProcesses,
            lambda: bool(process.reapProcessHandlers),
            first=_FIRST_REAP,
            last=_LAST_REAP,
        )
        self._handleEvent = _read_or_write(self)
        self._disconnect = _disconnect_selectable(self)
        self._failureLog = _failure_logger(self)
        self._unbound = threading.Event()
        """Set while no hub runs the reactor: what ``run()`` from another thread waits for."""
        self._meter = _meter(hub)
        """Twisted's meter in the hub's accounting (None when off): brackets each dispatch."""
        super().__init__(hub.loop)
        self._writerFds = _fd_tables(self)[1]
        """The stock reactor's ``{writer: fd}`` table (never replaced, only cleared)."""

    # -- binding to a hub -----------------------------------------------------

    @property
    def hub(self) -> Hub | None:
        """The hub the reactor runs on, or None between runs."""
        return self._hub

    def bind(self, hub: Hub) -> None:
        """Follow ``hub``'s loop: called at attach for a reactor that ran on an earlier hub."""
        self._hub = hub
        self._unbound.clear()
        self._meter = _meter(hub)
        self._poolStopped = []
        self._logContextStack = _log_context_stack()  # this run's loop thread
        self._hubLoop = hub.loop
        _set_loop(self, hub.loop)
        _reset_run_state(self)
        for reader in _internal_readers(self):
            self.addReader(reader)
        self._armPendingCalls()  # calls scheduled between two runs
        if process.reapProcessHandlers:  # children of an earlier run, still to reap
            self._reapSoon()

    def prepare_start(self) -> None:
        """Make sure the triggers that ReactorBase.__init__ adds once exist for this run.

        They are consumed when they fire (each run fires startup and shutdown
        once), so a reactor reused by the next run needs them again.
        """
        _ensure_trigger(self, "during", "startup", _really_start_running(self))
        _ensure_trigger(self, "during", "shutdown", self.crash)
        _ensure_trigger(self, "during", "shutdown", self.disconnectAll)

    async def shutdown(self) -> None:
        """Fire the shutdown event and wait for it, then release everything this run held.

        ``before`` triggers may return Deferreds; ``during`` and ``after``
        triggers run once they have all fired.  If the hub's bounded wait
        cancels us, the triggers that never ran are dropped so that they cannot
        fire into the next run.
        """
        loop = self._hubLoop
        hub = self._hub
        fired: asyncio.Future[None] = loop.create_future()
        finished = False
        try:
            self.addSystemEventTrigger("after", "shutdown", _resolve, fired)
            _mark_stopped(self)
            self.fireSystemEvent("shutdown")
            await _shutdown_triggers_to_finish(fired)
            finished = True
            for stopped in self._poolStopped:
                await _threadpool_to_stop(stopped)
        finally:
            # A loop closed while we waited leaves this coroutine to be closed by
            # the garbage collector, perhaps during a later run: leave that alone.
            if self._hub is hub:
                if not finished:
                    self._abandonShutdown()
                self.unbind()

    def _abandonShutdown(self) -> None:
        """The shutdown triggers overran the hub's stop timeout: drop the user's, run ours.

        The user's remaining triggers must not fire into the next run; the
        reactor's own (stop the pool, disconnect every connection, leave the
        running state) still run, or fds and threads would leak.
        """
        own = {self.crash, self.disconnectAll, self._stopThreadPool}
        dropped = _abandon_event(self, "shutdown")
        for trigger, args, kwargs in dropped:
            if trigger in own:
                trigger(*args, **kwargs)
            elif trigger is not _resolve:
                log.warning(
                    "bridges: Twisted shutdown trigger %r dropped: the triggers before it "
                    "did not finish within the hub's stop timeout",
                    trigger,
                )

    def recover(self) -> None:
        """Unbind from a hub whose loop closed before its stop sequence finished.

        That hub's shutdown cannot run any more: its pending shutdown triggers
        are dropped (logged), so that none fires into a later run, except that
        the thread pool is still stopped.  The connections of that run are not
        closed: their fds are simply forgotten, as the closed loop forgot them.
        """
        for trigger, args, kwargs in _abandon_event(self, "shutdown"):
            if trigger == self._stopThreadPool:
                trigger(*args, **kwargs)  # before unbind(): joined off this thread
            elif trigger not in (self.crash, self.disconnectAll, _resolve):
                log.warning(
                    "bridges: Twisted shutdown trigger %r dropped: the loop of its hub "
                    "closed before the hub's stop sequence ran it",
                    trigger,
                )
        self.unbind()

    def unbind(self) -> None:
        """Give the hub back every fd and timer, and forget the loop (which is about to close)."""
        _reset_run_state(self)
        for call in self.getDelayedCalls():
            call.cancel()
        del self._timed[:]
        readers, writers = _fd_tables(self)
        hub = self._hub
        if hub is not None and not hub.loop.is_closed():
            for fd in set(readers.values()):
                with contextlib.suppress(BridgeError):
                    hub.remove_reader(fd, owner=OWNER)
            for fd in set(writers.values()):
                with contextlib.suppress(BridgeError):
                    hub.remove_writer(fd, owner=OWNER)
        readers.clear()
        writers.clear()
        for state in self._soonWriters.values():
            if state is not _NO_HANDLE and state is not _WRITING:
                state.cancel()
        self._soonWriters.clear()
        self._reaper.cancel()
        self._hubLoop = None
        _set_loop(self, None)
        self._hub = None
        self._unbound.set()
        self._meter = None

    # -- lifetime ---------------------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
        """Refuse on the hub; from another thread, wait while the hub runs the reactor.

        ``crochet.setup()`` (called by libraries built on crochet) runs the
        reactor in a thread of its own.  On the hub the reactor already runs,
        and crochet's thread-side API (``run_in_reactor``, ``wait_for``) only
        needs it running: so that thread blocks here until the hub stops the
        reactor, as a native ``run()`` returns when the reactor stops.
        """
        hub = self._hub
        if hub is not None and _running_loop() is not hub.loop:
            self._unbound.wait()
            return
        raise HubOwnsLoopError(
            "reactor.run() was called, but the bridges hub already runs the Twisted reactor "
            "on its asyncio loop. Drop the reactor.run() call: code that runs inside "
            "bridges.run(...) is already on a running reactor (use reactor.callWhenRunning "
            "or just call your start-up code), and reactor.stop() stops the hub."
        )

    def iterate(self, delay: float = 0.0) -> None:
        raise HubOwnsLoopError(
            "reactor.iterate() cannot run the asyncio loop from inside itself: the bridges "
            "hub already runs it. Await something instead (e.g. "
            "await bridges.awaitable(task.deferLater(reactor, delay, lambda: None)))."
        )

    def stop(self) -> None:
        """Stop the hub: main is cancelled, then the shutdown triggers run in the stop sequence."""
        if not _mark_stopped(self):
            raise error.ReactorNotRunning("Can't stop reactor that isn't running.")
        hub = self._hub
        if hub is not None:
            hub.request_stop("reactor.stop()")

    def crash(self) -> None:
        """Leave the running state without stopping the loop (the stock one calls loop.stop()).

        Runs as the reactor's own ``during shutdown`` trigger; called by user
        code (as trial does), it stops the hub too.
        """
        _mark_crashed(self)
        hub = self._hub
        if hub is not None and hub.running:
            _mark_stopped(self)
            hub.request_stop("reactor.crash()")

    # -- child processes ---------------------------------------------------------

    def spawnProcess(self, *args: Any, **kwargs: Any) -> Any:
        """Twisted's spawnProcess; the hub's reactor reaps the child without SIGCHLD.

        Twisted reaps a child when its pipes close and, for one that exits
        later, on SIGCHLD.  A SIGCHLD handler is the hub's to give (gevent may
        need it too, uvloop's libuv keeps its own), so instead, while Twisted
        has children, the reactor checks them on a timer that starts at 1 ms
        and backs off to 50 ms (a non-blocking ``waitpid`` per child).
        """
        if self._hub is None:
            raise not_bound("spawnProcess")
        transport = super().spawnProcess(*args, **kwargs)
        self._reapSoon()
        return transport

    def _reapSoon(self) -> None:
        if not self._reaper.soon():
            raise not_bound("spawnProcess")

    # -- threads ----------------------------------------------------------------

    def _initThreadPool(self) -> None:
        super()._initThreadPool()
        assert self.threadpool is not None
        self.threadpool.threadFactory = _daemon_thread

    def _stopThreadPool(self) -> None:
        """Stop the pool without blocking the loop.

        The stock trigger joins the workers on the loop's thread: a worker that
        waits in ``blockingCallFromThread`` for the loop would then wait for
        ever.  Here the join runs in a helper thread; :meth:`shutdown` awaits it
        (bounded by the hub's stop timeout), and the workers are daemon threads,
        so one that never returns cannot hang interpreter exit either.
        """
        _take_threadpool_triggers(self)
        pool, self.threadpool = self.threadpool, None
        if pool is None:
            return
        loop = self._hubLoop
        if not pool.threads or loop is None:
            pool.stop()  # no worker to wait for: nothing can block
            return
        stopped: asyncio.Future[None] = loop.create_future()
        self._poolStopped.append(stopped)
        # The helper drops its reference before it reports, so the pool is
        # garbage once the stop is awaited (Twisted's tests check that).
        holder = [pool]
        del pool

        def join() -> None:
            try:
                holder.pop().stop()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed first
                    loop.call_soon_threadsafe(_resolve, stopped)

        threading.Thread(
            target=join, name="bridges: joining Twisted's threadpool", daemon=True
        ).start()

    # -- readers and writers, through the hub's fd registry ---------------------

    listenTCP = _bound_only("listenTCP", _listen_tcp)

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: Any,
        timeout: float = 30.0,
        bindAddress: Any = None,
    ) -> Any:
        """Twisted's ``connectTCP``; the connection's ``write()`` sends at once when it can.

        As asyncio's transports do, and only where that cannot be told from
        Twisted's queued write flushed at once ("TCP writes sent at once" in
        docs/twisted.md).
        """
        connector = _tcp.Connector(host, port, factory, timeout, bindAddress, self)
        connector.connect()
        return connector

    listenUDP = _bound_only("listenUDP")
    listenSSL = _bound_only("listenSSL")
    listenMulticast = _bound_only("listenMulticast")
    listenUNIX = _bound_only("listenUNIX")
    listenUNIXDatagram = _bound_only("listenUNIXDatagram")
    connectUNIXDatagram = _bound_only("connectUNIXDatagram")
    adoptStreamPort = _bound_only("adoptStreamPort")
    adoptStreamConnection = _bound_only("adoptStreamConnection")
    adoptDatagramPort = _bound_only("adoptDatagramPort")

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``callable`` on the hub's thread, as the stock reactor does.

        The loop is read once: the hub's thread may unbind the reactor (and
        close the loop) while a worker is in here.
        """
        loop = self._hubLoop
        if loop is None:
            raise not_bound("callFromThread")
        try:
            loop.call_soon_threadsafe(lambda: self.callLater(0, callable, *args, **kw))
        except RuntimeError:  # the loop closed after it was read
            raise not_bound("callFromThread") from None


async def _shutdown_triggers_to_finish(fired: asyncio.Future[None]) -> None:
    # Named for the hub's StopTimeoutError, which says where the stage was suspended.
    await fired


async def _threadpool_to_stop(stopped: asyncio.Future[None]) -> None:
    await stopped


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
