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
connections instead of toggling write interest on every write, and a log
context built once per fd registration instead of once per event.

Every access to a private attribute of Twisted or asyncio is isolated in one
function below, with the versions it was checked on; :class:`HubReactor`
also overrides the private methods ``_initThreadPool``, ``_stopThreadPool``,
``_cancelCallLater`` and ``_moveCallLaterSooner`` of ``ReactorBase``.  The
test ``test_twisted_private_attributes_still_exist`` breaks if one changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import logging
import threading
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import abstract, error, process, tcp, unix
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.base import DelayedCall, ReactorBase
from twisted.logger import Logger
from twisted.python import context as twisted_context
from twisted.python import log as legacy_log
from twisted.python.log import ILogContext

from .._errors import BridgeError
from ._errors import HubOwnsLoopError, NotAttachedError

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["OWNER", "HubReactor"]

log = logging.getLogger("bridges.twisted")
_log = Logger(namespace="twisted.internet.base")
_TWISTED_WRITE_SOME_DATA = (tcp.Connection.writeSomeData, unix.Server.writeSomeData)

_FIRST_REAP = 0.001
_LAST_REAP = 0.05
"""Seconds between checks for exited children: from the first to the longest interval."""

OWNER = "twisted"
"""The owner name of the reactor's fds and signal handlers in the hub's registries."""


def _not_bound(what: str) -> NotAttachedError:
    return NotAttachedError(
        f"reactor.{what} was called while no bridges hub runs (between bridges.run calls), "
        "so there is no loop to register it with; call it from code running on the hub "
        "(inside bridges.run(..., frameworks=['twisted']) or `async with bridges.Hub():`), "
        "e.g. from a function passed to reactor.callWhenRunning."
    )


def _bound_only(name: str) -> Callable[..., Any]:
    """The stock reactor's ``name``, refused with :class:`NotAttachedError` between runs.

    For the calls that open an fd and then register it: between runs the
    registration would fail after the socket was bound (leaking it) or after
    the child was spawned.  ``connectTCP`` and friends are not wrapped: they
    start connecting with ``callLater(0, ...)``, which between runs waits for
    the next run, as it waits for ``reactor.run()`` in plain Twisted.
    """
    stock = getattr(AsyncioSelectorReactor, name)

    @functools.wraps(stock)
    def method(self: HubReactor, *args: Any, **kwargs: Any) -> Any:
        if self._hub is None:
            raise _not_bound(name)
        return stock(self, *args, **kwargs)

    return method


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    """Thread factory of the reactor's pool: a stuck worker must not hang interpreter exit."""
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


# -- private attributes, one function per concern ---------------------------
# Checked on Twisted 23.10 - 26.10 (twisted.internet.base / asyncioreactor).


def _set_loop(reactor: AsyncioSelectorReactor, loop: asyncio.AbstractEventLoop | None) -> None:
    """Point the stock reactor at ``loop`` (``_asyncioEventloop``, Twisted 23.10 - 26.10).

    Everything else the stock reactor does with the loop (timers, fds) is
    overridden in :class:`HubReactor`, so this one attribute is enough.
    """
    reactor._asyncioEventloop = loop  # type: ignore[assignment]


def _read_or_write(reactor: AsyncioSelectorReactor) -> Callable[[Any, bool], None]:
    """Twisted's handler of one fd event: doRead/doWrite, then connectionLost if needed.

    ``_readOrWrite`` (Twisted 23.10 - 26.10).
    """
    return reactor._readOrWrite  # type: ignore[no-any-return]


def _remove_all(reactor: ReactorBase, readers: list[Any], writers: list[Any]) -> list[Any]:
    """Remove these selectables the way ``removeAll`` does (``_removeAll``, 23.10 - 26.10)."""
    return reactor._removeAll(readers, writers)  # type: ignore[no-any-return]


def _really_start_running(reactor: ReactorBase) -> Callable[[], None]:
    """The reactor's own ``during startup`` trigger (``_reallyStartRunning``, 23.10 - 26.10)."""
    return reactor._reallyStartRunning  # type: ignore[no-any-return]


def _fd_tables(reactor: AsyncioSelectorReactor) -> tuple[dict[Any, int], dict[Any, int]]:
    """The stock reactor's ``{selectable: fd}`` tables of readers and writers (23.10 - 26.10)."""
    return reactor._readers, reactor._writers


def _polling(reactor: AsyncioSelectorReactor) -> Any:
    """The stock reactor's poller of fds epoll refuses (``_continuousPolling``, 23.10 - 26.10)."""
    return reactor._continuousPolling


def _is_continuously_polled(reactor: AsyncioSelectorReactor, selectable: Any) -> bool:
    """Whether the stock reactor polls ``selectable`` on a timer (23.10 - 26.10)."""
    polling = _polling(reactor)
    return selectable in polling._readers or selectable in polling._writers


def _internal_readers(reactor: ReactorBase) -> set[Any]:
    """Readers that belong to the reactor itself, e.g. its waker (ReactorBase, 23.10 - 26.10)."""
    return reactor._internalReaders  # type: ignore[no-any-return]


def _log_context_stack() -> list[Any] | None:
    """This thread's stack of Twisted log contexts, or None if someone replaced the tracker.

    ``twisted.python.context`` keeps one ``ContextTracker`` per thread, whose
    ``contexts`` list ``context.call`` pushes to and pops from (Twisted
    23.10 - 26.10).  The hub's thread pushes to it directly.
    """
    tracker = twisted_context.theContextTracker
    if not isinstance(tracker, twisted_context.ThreadedContextTracker):
        return None
    stack = tracker.currentContext().contexts
    return stack if isinstance(stack, list) else None


def _reset_run_state(reactor: ReactorBase) -> None:
    """Make a reactor that already ran and stopped startable again.

    ReactorBase tracks its life in ``_started``, ``_stopped``,
    ``_justStopped`` and ``_startedBefore`` (Twisted 23.10 - 26.10); the last
    one makes a stock reactor refuse a second ``run()``.
    """
    reactor._started = False
    reactor._stopped = True
    reactor._justStopped = False
    reactor._startedBefore = False
    reactor.running = False


def _mark_crashed(reactor: ReactorBase) -> None:
    """What ``ReactorBase.crash`` does, without adding a second startup trigger (23.10 - 26.10)."""
    reactor._started = False
    reactor.running = False
    _ensure_trigger(reactor, "during", "startup", _really_start_running(reactor))


def _mark_stopped(reactor: ReactorBase) -> bool:
    """Set the flags ``stop()`` sets; False if the reactor was already stopped (23.10 - 26.10)."""
    if reactor._stopped:
        return False
    reactor._stopped = True
    return True


def _system_event(reactor: ReactorBase, event_type: str) -> Any | None:
    """The ``_ThreePhaseEvent`` holding the triggers of ``event_type`` (23.10 - 26.10)."""
    return reactor._eventTriggers.get(event_type)


def _ensure_trigger(
    reactor: ReactorBase, phase: str, event_type: str, fn: Callable[[], Any]
) -> None:
    """Add ``fn`` as a trigger unless it is already there (``_ThreePhaseEvent``, 23.10 - 26.10)."""
    event = _system_event(reactor, event_type)
    if event is None or (fn, (), {}) not in getattr(event, phase):
        reactor.addSystemEventTrigger(phase, event_type, fn)


def _abandon_event(reactor: ReactorBase, event_type: str) -> list[Any]:
    """Drop the triggers of an event whose firing never finished; return what was dropped.

    A ``before`` trigger's Deferred that never fires leaves the event in state
    ``"BEFORE"`` with its ``during``/``after`` triggers queued; should the
    Deferred fire later, those would run in the *next* run.  Emptying them
    (and the state) makes a late firing harmless.  ``before`` triggers are
    left only by an event that never started firing (``_ThreePhaseEvent``,
    Twisted 23.10 - 26.10).
    """
    event = _system_event(reactor, event_type)
    if event is None:
        return []
    dropped = list(event.before) + list(event.during) + list(event.after)
    del event.before[:]
    del event.during[:]
    del event.after[:]
    event.state = "BASE"
    return dropped


def _take_threadpool_triggers(reactor: ReactorBase) -> None:
    """Remove the pool's start/stop triggers, as ``ReactorBase._stopThreadPool`` does.

    ``_threadpoolStartupID`` and ``threadpoolShutdownID`` (Twisted 23.10 - 26.10).
    """
    for trigger in (reactor._threadpoolStartupID, reactor.threadpoolShutdownID):
        if trigger is not None:
            with contextlib.suppress(ValueError, KeyError):
                reactor.removeSystemEventTrigger(trigger)
    reactor._threadpoolStartupID = None
    reactor.threadpoolShutdownID = None


# -- the reactor --------------------------------------------------------------


class _Dispatch:
    """An fd event for a selectable: ``callWithLogger(selectable, _readOrWrite, ...)``, cheaper.

    Twisted runs every read and write inside a log context whose ``system``
    is the selectable's ``logPrefix()``.  ``callWithLogger`` builds that
    context afresh per event; this keeps it per registration and rebuilds it
    only when the prefix changes (a connection's prefix changes once, when
    its protocol is attached), so log events still carry the right system.
    """

    __slots__ = ("_context", "_method", "_prefix", "_reactor", "_read", "_selectable")

    def __init__(
        self,
        reactor: HubReactor,
        selectable: Any,
        read: bool,
        method: Callable[[Any, bool], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self._selectable = selectable
        self._read = read
        self._method = reactor._handleEvent if method is None else method
        self._prefix: object = None
        self._context: dict[Any, Any] = {}

    def __call__(self) -> None:
        selectable = self._selectable
        try:
            prefix = selectable.logPrefix()
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - as callWithLogger does
            prefix = "(buggy logPrefix method)"
            legacy_log.err(system=prefix)
        if prefix != self._prefix:
            log_context = dict(twisted_context.get(ILogContext))
            log_context["system"] = prefix
            self._context = {ILogContext: log_context}
            self._prefix = prefix
        reactor = self._reactor
        try:
            stack = reactor._logContextStack
            if stack is None:
                twisted_context.call(self._context, self._run, selectable)
            else:
                stack.append(self._context)  # what context.call does, minus two calls
                try:
                    self._run(selectable)
                finally:
                    stack.pop()
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - as callWithLogger does
            legacy_log.err(system=prefix)

    def _run(self, selectable: Any) -> None:
        if not self._read:
            self._method(selectable, False)
            return
        reactor = self._reactor
        reactor._reading = selectable
        try:
            self._method(selectable, True)
        finally:
            reactor._reading = None
        # What the read wrote goes out now, in the same callback: as a reactor
        # that finds the socket readable and writable in one poll does.
        if selectable in reactor._soonWriters:
            reactor._flush(selectable, False)


_SAFE_WRITERS: dict[type, bool] = {}
_WRITE_DISPATCH = "_bridges_soon_write"
"""Attribute of a soon-written connection holding its cached :class:`_Dispatch`."""
_NO_HANDLE = object()
"""Soon-write state: no call_soon pending; written by the read being dispatched for this
connection when it returns, or by the call_soon callback running now."""
_WRITING = object()
"""Soon-write state: its doWrite() is running."""
_MISSING = object()


def _writes_safely_when_not_writable(writer: Any) -> bool:
    """Whether ``writer.doWrite()`` may be called before its socket is known to be writable.

    True for Twisted's own TCP and UNIX connections whose ``doWrite`` and
    ``writeSomeData`` are Twisted's: a write to a full socket then writes
    nothing (EAGAIN) and waits for writability.  False while a client
    connects (its ``doWrite`` is then ``doConnect``, an instance attribute)
    and for any other class, whose ``doWrite`` may treat writability as a
    signal.
    """
    kind = type(writer)
    safe = _SAFE_WRITERS.get(kind)
    if safe is None:
        safe = (
            issubclass(kind, tcp.Connection)
            and kind.doWrite is abstract.FileDescriptor.doWrite
            and kind.writeSomeData in _TWISTED_WRITE_SOME_DATA
        )
        _SAFE_WRITERS[kind] = safe
    return safe and "doWrite" not in writer.__dict__


class HubReactor(AsyncioSelectorReactor):
    """``AsyncioSelectorReactor`` whose loop, lifetime and fds belong to a bridges hub."""

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
        self._reading: Any = None
        self._logContextStack = _log_context_stack()
        self._timed: list[tuple[float, int, DelayedCall]] = []
        self._sequence = itertools.count()
        self._reaper: asyncio.TimerHandle | None = None
        self._reapDelay = _FIRST_REAP
        self._handleEvent = _read_or_write(self)
        super().__init__(hub.loop)

    # -- binding to a hub -----------------------------------------------------

    @property
    def hub(self) -> Hub | None:
        """The hub the reactor runs on, or None between runs."""
        return self._hub

    def bind(self, hub: Hub) -> None:
        """Follow ``hub``'s loop: called at attach for a reactor that ran on an earlier hub."""
        self._hub = hub
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
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        self._hubLoop = None
        _set_loop(self, None)
        self._hub = None

    # -- lifetime ---------------------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
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
            raise _not_bound("spawnProcess")
        transport = super().spawnProcess(*args, **kwargs)
        self._reapSoon()
        return transport

    def _reapSoon(self) -> None:
        loop = self._hubLoop
        if loop is None:
            raise _not_bound("spawnProcess")
        if self._reaper is not None:
            self._reaper.cancel()
        self._reapDelay = _FIRST_REAP
        self._reaper = loop.call_later(self._reapDelay, self._reapChildren)

    def _reapChildren(self) -> None:
        self._reaper = None
        process.reapAllProcesses()
        if process.reapProcessHandlers and self._hubLoop is not None:
            self._reapDelay = min(self._reapDelay * 2, _LAST_REAP)
            self._reaper = self._hubLoop.call_later(self._reapDelay, self._reapChildren)

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

    listenTCP = _bound_only("listenTCP")
    listenUDP = _bound_only("listenUDP")
    listenSSL = _bound_only("listenSSL")
    listenMulticast = _bound_only("listenMulticast")
    listenUNIX = _bound_only("listenUNIX")
    listenUNIXDatagram = _bound_only("listenUNIXDatagram")
    connectUNIXDatagram = _bound_only("connectUNIXDatagram")
    adoptStreamPort = _bound_only("adoptStreamPort")
    adoptStreamConnection = _bound_only("adoptStreamConnection")
    adoptDatagramPort = _bound_only("adoptDatagramPort")

    def addReader(self, reader: Any) -> None:
        readers, _ = _fd_tables(self)
        if reader in readers or _is_continuously_polled(self, reader):
            return
        hub = self._hub
        if hub is None:
            raise _not_bound("addReader")
        fd = reader.fileno()
        if not self._claim(hub.add_reader, fd, reader, True):
            _polling(self).addReader(reader)
            return
        readers[reader] = fd

    def addWriter(self, writer: Any) -> None:
        _, writers = _fd_tables(self)
        if writer in writers or writer in self._soonWriters:
            return
        if _is_continuously_polled(self, writer):
            return
        if self.soonWrite and _writes_safely_when_not_writable(writer):
            loop = self._hubLoop
            if loop is None:
                raise _not_bound("addWriter")
            if writer is self._reading:
                self._soonWriters[writer] = _NO_HANDLE
            else:
                self._soonWriters[writer] = loop.call_soon(self._writeSoon, writer)
            return
        self._registerWriter(writer)

    def _registerWriter(self, writer: Any) -> None:
        _, writers = _fd_tables(self)
        hub = self._hub
        if hub is None:
            raise _not_bound("addWriter")
        fd = writer.fileno()
        if not self._claim(hub.add_writer, fd, writer, False):
            _polling(self).addWriter(writer)
            return
        writers[writer] = fd

    def _writeSoon(self, writer: Any) -> None:
        """Soon-write: try the write on the next loop pass; wait for writability only if needed.

        A stock reactor toggles write interest with the selector on every
        ``transport.write()`` (register, one poll, write, unregister), which
        costs most of a round trip's reactor work on asyncio.  A socket is
        almost always writable, so the write is simply tried (on the next loop
        pass, or right after the read that wrote it, see ``_Dispatch._run``);
        only when the kernel buffer is full does the writer wait for
        writability as usual.  Only Twisted's own TCP and UNIX connections take
        this path: their ``doWrite`` copes with a socket that is not writable
        (EAGAIN writes nothing), see :func:`_writes_safely_when_not_writable`.
        """
        if writer not in self._soonWriters:
            return
        self._soonWriters[writer] = _NO_HANDLE  # the handle is the one running now
        dispatch = writer.__dict__.get(_WRITE_DISPATCH)
        if dispatch is None or dispatch._reactor is not self:
            dispatch = _Dispatch(self, writer, False, self._flush)
            writer.__dict__[_WRITE_DISPATCH] = dispatch
        dispatch()

    def _flush(self, writer: Any, _read: bool) -> None:
        soon = self._soonWriters
        state = soon.get(writer, _MISSING)
        if state is _MISSING or state is _WRITING:
            return
        if state is not _NO_HANDLE:
            state.cancel()  # a read dispatch flushes it first: the pending call_soon is moot
        soon[writer] = _WRITING  # removeWriter() (stopWriting) takes it out
        self._handleEvent(writer, False)
        if soon.get(writer) is _WRITING:  # data is left: wait for writability
            del soon[writer]
            if writer.fileno() != -1:
                self._registerWriter(writer)

    def _claim(self, add: Callable[..., None], fd: int, selectable: Any, read: bool) -> bool:
        """Register ``selectable`` with the hub; False when the fd can only be polled.

        epoll refuses regular files (EPERM); like the stock reactor we then
        poll them on a timer.  (The hub has already dropped its claim on a
        registration the loop refused.)
        """
        try:
            add(fd, _Dispatch(self, selectable, read), owner=OWNER)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                return False
            if isinstance(exc, BrokenPipeError) and not read:
                return True
            raise
        return True

    def removeReader(self, reader: Any) -> None:
        if _polling(self).isReading(reader):
            _polling(self).removeReader(reader)
            return
        readers, _ = _fd_tables(self)
        fd = readers.pop(reader, None)
        if fd is not None and self._hub is not None:
            self._hub.remove_reader(fd, owner=OWNER)

    def removeWriter(self, writer: Any) -> None:
        if writer in self._soonWriters:
            state = self._soonWriters.pop(writer)
            if state is not _NO_HANDLE and state is not _WRITING:
                state.cancel()
            return
        if _polling(self).isWriting(writer):
            _polling(self).removeWriter(writer)
            return
        _, writers = _fd_tables(self)
        fd = writers.pop(writer, None)
        if fd is not None and self._hub is not None:
            self._hub.remove_writer(fd, owner=OWNER)

    def getWriters(self) -> list[Any]:
        return super().getWriters() + list(self._soonWriters)

    def removeAll(self) -> list[Any]:
        readers, writers = _fd_tables(self)
        return (
            _remove_all(self, list(readers), list(writers) + list(self._soonWriters))
            + _polling(self).removeAll()
        )

    # -- timers ---------------------------------------------------------------

    # One asyncio timer per DelayedCall.  The stock reactor mirrors every
    # callLater through Twisted's own heap *and* re-arms one asyncio timer for
    # the heap's head (two TimerHandles and a heap walk per call); here each
    # call is one loop callback: ``call_soon`` for a zero delay, ``call_at``
    # otherwise.  What Twisted promises is kept:
    #
    # * order: calls run in the order of their times.  A zero-delay call is
    #   queued at once, while a timed call reaches asyncio's ready queue only
    #   when the loop next looks at its timers, so before a zero-delay call
    #   runs, every due timed call with an earlier time runs first
    #   (``_timed`` is a heap of the timed calls, for that check only);
    # * ``seconds()`` stays epoch time, and a call never runs before its time
    #   (a timer that fires early, e.g. on uvloop's millisecond clock, is
    #   re-armed for the rest);
    # * DelayedCall's cancel(), reset() and delay() work as documented.

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        assert delay >= 0, f"{delay} is not greater than or equal to 0 seconds"
        call = DelayedCall(
            self.seconds() + delay,
            callable,
            args,
            kw,
            self._cancelCallLater,
            self._moveCallLaterSooner,
            seconds=self.seconds,
        )
        loop = self._hubLoop
        if loop is None:  # between runs: bind() arms it in the next run
            self._timers[call] = None
        elif delay == 0:
            self._timers[call] = loop.call_soon(self._runCall, call)
        else:
            self._timers[call] = loop.call_at(loop.time() + delay, self._runCall, call)
            self._pushTimed(call)
        return call

    def _pushTimed(self, call: DelayedCall) -> None:
        timed = self._timed
        if len(timed) > 64 and len(timed) > 2 * len(self._timers):
            # Entries of calls that ran or were cancelled are dropped lazily.
            timed[:] = [entry for entry in timed if entry[2] in self._timers]
            heapify(timed)
        heappush(timed, (call.time, next(self._sequence), call))

    def _arm(self, call: DelayedCall) -> None:
        loop = self._hubLoop
        delay = call.time - self.seconds()
        if delay <= 0:
            self._timers[call] = loop.call_soon(self._runCall, call)
        else:
            self._timers[call] = loop.call_at(loop.time() + delay, self._runCall, call)
            self._pushTimed(call)

    def _runCall(self, call: DelayedCall) -> None:
        if call.delayed_time > 0:  # DelayedCall.delay() / reset() to a later time
            call.activate_delay()
            self._arm(call)
            return
        if call.time > self.seconds():
            self._arm(call)
            return
        del self._timers[call]
        timed = self._timed
        if timed and timed[0][0] <= call.time:
            self._runEarlier(call.time)
            # The earlier calls may have cancelled this one (LoopingCall.stop(),
            # a timeout), or delayed it: it is out of _timers, so only we can tell.
            if call.cancelled:
                return
            if call.delayed_time > 0:
                call.activate_delay()
                self._arm(call)
                return
        call.called = 1
        try:
            call.func(*call.args, **call.kw)
        except Exception:  # noqa: BLE001 - logged, like ReactorBase.runUntilCurrent does
            _log.failure(
                "while handling timed call{creator}",
                creator=(
                    "\n C: from a DelayedCall created here:\n C:"
                    + "".join(call.creator).rstrip().replace("\n", "\n C:")
                    if call.creator
                    else ""
                ),
            )

    def _runEarlier(self, time: float) -> None:
        """Run the due timed calls whose time is not after ``time``, in time order."""
        timed = self._timed
        while timed and timed[0][0] <= time:
            _, _, other = heappop(timed)
            handle = self._timers.get(other)
            if handle is None or other.delayed_time > 0 or other.time > time:
                continue  # ran, cancelled, unarmed, or moved later (its re-arm pushed it again)
            handle.cancel()
            self._runCall(other)

    def _cancelCallLater(self, call: DelayedCall) -> None:
        handle = self._timers.pop(call, None)
        if handle is not None:
            handle.cancel()

    def _moveCallLaterSooner(self, call: DelayedCall) -> None:
        handle = self._timers.get(call)
        if handle is not None:
            handle.cancel()
            self._arm(call)

    def _armPendingCalls(self) -> None:
        for call, handle in list(self._timers.items()):
            if handle is None:
                self._arm(call)

    def getDelayedCalls(self) -> list[DelayedCall]:
        return [call for call in self._timers if not call.cancelled]

    def timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, min(call.getTime() for call in self._timers) - self.seconds())

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``callable`` on the hub's thread, as the stock reactor does.

        The loop is read once: the hub's thread may unbind the reactor (and
        close the loop) while a worker is in here.
        """
        loop = self._hubLoop
        if loop is None:
            raise _not_bound("callFromThread")
        try:
            loop.call_soon_threadsafe(lambda: self.callLater(0, callable, *args, **kw))
        except RuntimeError:  # the loop closed after it was read
            raise _not_bound("callFromThread") from None


async def _shutdown_triggers_to_finish(fired: asyncio.Future[None]) -> None:
    # Named for the hub's StopTimeoutError, which says where the stage was suspended.
    await fired


async def _threadpool_to_stop(stopped: asyncio.Future[None]) -> None:
    await stopped


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
