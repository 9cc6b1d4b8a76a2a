"""Every private attribute of Twisted (and asyncio) the hub's reactor touches, one function each.

Checked on Twisted 23.10 - 26.10 (``twisted.internet.base`` / ``asyncioreactor``);
tests/test_twisted_compat.py tests the behaviour each relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import operator
from typing import Any, Callable

from twisted.internet import main, posixbase, tcp
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.base import ReactorBase
from twisted.internet.defer import Deferred
from twisted.python import context as twisted_context


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


def _callback_list_getter() -> Callable[[Any], list[Any]]:
    """A C-level getter of a Deferred's list of pending ``(callback, errback)`` pairs.

    ``Deferred._callbacks`` (Twisted 24.x - 26.10; ``callbacks`` in 23.10),
    each item ``((callback, args, kwargs), (errback, args, kwargs))``, popped
    and run in order by ``_runCallbacks``.  Appending a pair to it while the
    Deferred has not fired is what ``addCallbacks`` does, without its Python
    frame and argument checks; ``_deferred_to_future`` does that on every await.
    """
    private = isinstance(getattr(Deferred(), "_callbacks", None), list)
    return operator.attrgetter("_callbacks" if private else "callbacks")


_callbacks_of = _callback_list_getter()


NO_FILEDESC = posixbase._NO_FILEDESC
"""The reason a selectable whose fd is already closed is disconnected with
(``posixbase._NO_FILEDESC``, Twisted 23.10 - 26.10), as ``_readOrWrite`` does."""


def _disconnect_selectable(reactor: AsyncioSelectorReactor) -> Callable[[Any, Any, bool], None]:
    """What ``_readOrWrite`` calls when a read or write ends the connection.

    ``_DisconnectSelectableMixin._disconnectSelectable(selectable, why, isRead)``
    (Twisted 23.10 - 26.10): the connectionLost (or readConnectionLost, for a
    half-closeable protocol) with the Failure matching ``why``.
    """
    return reactor._disconnectSelectable  # type: ignore[no-any-return]


def _failure_logger(reactor: AsyncioSelectorReactor) -> Any:
    """The ``Logger`` ``_readOrWrite`` logs a raising ``doRead`` with (``_log``, 23.10 - 26.10)."""
    return reactor._log


def reads_like_twisted(kind: type) -> bool:
    """Whether reading a ``kind`` connection may skip its ``doRead`` method.

    True when it is ``tcp.Connection.doRead`` (Twisted 23.10 - 26.10): the
    reader then does what it does, ``socket.recv(bufferSize)`` (EWOULDBLOCK
    reads nothing, another OSError is CONNECTION_LOST) and hands the bytes to
    :data:`DATA_RECEIVED`, and a clean close after a failed send is
    CONNECTION_LOST (see :class:`SendsAtOnce`).
    """
    return (
        kind.doRead is tcp.Connection.doRead  # type: ignore[attr-defined]
        and kind._dataReceived is tcp.Connection._dataReceived  # type: ignore[attr-defined]
    )


DATA_RECEIVED = tcp.Connection._dataReceived
"""``tcp.Connection._dataReceived(connection, data)`` (Twisted 23.10 - 26.10): CONNECTION_DONE
for no bytes, else ``protocol.dataReceived(data)``.  Kept as Twisted's own frame: the stall
detector names the framework of a blocking ``dataReceived`` by the frame around it."""
_SEND_LATER = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR})
"""What ``writeSomeData`` counts as nothing written yet (EINTR: ``untilConcludes`` retries)."""
CONNECTION_LOST = main.CONNECTION_LOST
CONNECTION_DONE = main.CONNECTION_DONE


class OwnMethod:
    """``doRead``, ``doWrite`` of the hub's TCP transports: Twisted's, or the instance's own.

    Twisted gives single connections methods of their own: a connecting
    client's ``doRead``/``doWrite`` are its ``doConnect`` until it connects
    (then deleted), an aborted connection's are no-ops (``tcp.BaseClient``,
    ``_AbortingMixin.abortConnection``, Twisted 23.10 - 26.10).  The read
    path must know whether that happened, on every read.  Asking the
    instance's ``__dict__`` makes CPython build that dict, after which every
    attribute of the transport is slower to read and write (3.11 stops
    specialising them: the read path and ``write()`` touch about twenty).  So
    this data descriptor keeps what an instance sets in ``_own<Name>``
    (None: Twisted's method, found on the class after the one holding the
    descriptor); getting, setting and deleting behave as for an instance
    attribute, and on the class it is Twisted's function.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._holder = owner
        self._name = name
        self.own = f"_own{name[0].upper()}{name[1:]}"
        self._twisted: dict[type, Any] = {}

    def twisted(self, kind: type) -> Any:
        """The method ``kind`` has from Twisted (the next one in its MRO)."""
        method = self._twisted.get(kind)
        if method is None:
            mro = kind.__mro__
            method = next(
                vars(klass)[self._name]
                for klass in mro[mro.index(self._holder) + 1 :]
                if self._name in vars(klass)
            )
            self._twisted[kind] = method
        return method

    def __get__(self, instance: Any, kind: type | None = None) -> Any:
        if instance is None:
            return self.twisted(kind)  # type: ignore[arg-type]
        own = getattr(instance, self.own)
        if own is not None:
            return own
        return self.twisted(type(instance)).__get__(instance, kind)

    def __set__(self, instance: Any, method: Any) -> None:
        setattr(instance, self.own, method)

    def __delete__(self, instance: Any) -> None:
        if getattr(instance, self.own) is None:
            raise AttributeError(self._name)
        setattr(instance, self.own, None)


_PER_CONNECTION = (
    "TLS",
    "producer",
    "dataBuffer",
    "disconnecting",
    "_writeDisconnecting",
    "_writeDisconnected",
    "_aborting",
    "bufferSize",
)
"""Class-level defaults of Twisted's connections (``FileDescriptor``, ``_ConsumerMixin``,
``_AbortingMixin``, ``_newtls.ConnectionMixin``, Twisted 23.10 - 26.10) that the read path
and ``write()`` read on every event; set on the instance at creation (same values), so that
CPython reads them as fast as any instance attribute instead of searching the class MRO."""


class SendsAtOnce:
    """A mixin of Twisted's TCP transports: ``write()`` sends at once when nothing is queued.

    Twisted's ``FileDescriptor.write`` only queues: the bytes go out when the
    reactor next finds the socket writable (on the hub: right after the read
    that wrote them, see ``_writes.py``), which costs a writer registration, a
    ``doWrite`` and its bookkeeping per write.  asyncio's transports send
    straight from ``write()`` when their buffer is empty, and so does this
    one, under the same conditions that make it indistinguishable from a
    queued write that the reactor flushed at once: plain bytes, no producer
    (a pull producer is asked for more when ``doWrite`` empties the queue),
    nothing queued (order), no TLS (its ciphertext takes the stock path),
    connected, and not closing, half-closed or aborting.  What the kernel does
    not take, and every error, goes to the stock ``write``: it is queued and
    the writer pass reports the error, so no protocol callback ever runs from
    inside ``write()``; since the failed send consumed the socket's error, the
    connection's reader reports that loss too (see ``_sendFailed``).

    Relies on ``FileDescriptor``'s ``_tempDataBuffer``, ``dataBuffer``,
    ``producer``, ``disconnecting``, ``_writeDisconnecting`` and
    ``_writeDisconnected``, and ``_AbortingMixin._aborting`` (Twisted 23.10 -
    26.10).
    """

    doRead = OwnMethod()
    doWrite = OwnMethod()
    _ownDoRead: Any = None
    """What this connection set as its own ``doRead`` (see :class:`OwnMethod`), or None."""
    _ownDoWrite: Any = None
    """What this connection set as its own ``doWrite``, or None."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for name in _PER_CONNECTION:  # see _PER_CONNECTION
            setattr(self, name, getattr(self, name))
        self._ownDoRead = self._ownDoWrite = None
        self._sendFailed = self._sentAtOnce = False
        super().__init__(*args, **kwargs)

    def write(self, data: bytes) -> None:
        if (
            type(data) is bytes
            and data
            and self.connected  # type: ignore[attr-defined]
            and not self.TLS  # type: ignore[attr-defined]
            and self.producer is None  # type: ignore[attr-defined]
            and not self._tempDataBuffer  # type: ignore[attr-defined]
            and not self.dataBuffer  # type: ignore[attr-defined]
            and not self.disconnecting  # type: ignore[attr-defined]
            and not self._writeDisconnecting  # type: ignore[attr-defined]
            and not self._writeDisconnected  # type: ignore[attr-defined]
            and not self._aborting  # type: ignore[attr-defined]
        ):
            try:
                sent = self.socket.send(data)  # type: ignore[attr-defined]
            except OSError as exc:  # EAGAIN; anything else: the writer pass reports it
                sent = 0
                if exc.errno not in _SEND_LATER:
                    # The send took the socket's pending error (a reset): a read now
                    # sees a plain EOF, and must report the loss the error was.
                    self._sendFailed = True
            if sent == len(data):
                self._sentAtOnce = True
                return
            data = data[sent:]
        super().write(data)  # type: ignore[misc]

    _sendFailed = False
    """Whether a send from ``write()`` failed: the connection was lost (CONNECTION_LOST),
    whatever a later read says (see :func:`reads_like_twisted`)."""

    _sentAtOnce = False
    """Whether a write went out at once since this connection's last read dispatch: where
    Twisted would still hold it queued (the reactor flushes it when that dispatch ends)."""

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Twisted's ``registerProducer``; a pull producer also gets what a flush would give it.

        Twisted asks a pull producer for more each time ``doWrite`` empties the
        queue.  Registered right after a write that Twisted would still hold
        queued, it is asked again once that write is flushed: an empty
        ``doWrite`` (through the reactor, not from in here) does the same for a
        write that went out at once.
        """
        super().registerProducer(producer, streaming)  # type: ignore[misc]
        if self._sentAtOnce and not streaming and self.producer is producer:
            self._sentAtOnce = False
            self.startWriting()  # type: ignore[attr-defined]
