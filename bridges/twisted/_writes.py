"""The reactor's readers and writers, through the hub's fd registry, with soon-write.

A mixin of :class:`~bridges.twisted.HubReactor`: its methods replace the stock
reactor's ``addReader``/``addWriter``/``remove*`` (see the reactor's docstring).
"""

from __future__ import annotations

import errno
from errno import EWOULDBLOCK
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet import abstract, tcp, unix
from twisted.python import context as twisted_context
from twisted.python import log as legacy_log
from twisted.python.log import ILogContext

from .._accounting import qualified_name
from ._compat import (
    CONNECTION_DONE,
    CONNECTION_LOST,
    DATA_RECEIVED,
    NO_FILEDESC,
    SendsAtOnce,
    _fd_tables,
    _is_continuously_polled,
    _polling,
    _remove_all,
    reads_like_twisted,
)
from ._errors import not_bound

if TYPE_CHECKING:
    from ._reactor import HubReactor


OWNER = "twisted"
"""The owner name of the reactor's fds and signal handlers in the hub's registries."""
_TWISTED_WRITE_SOME_DATA = (tcp.Connection.writeSomeData, unix.Server.writeSomeData)
_CONNECTION_LOG_PREFIX = tcp.Connection.logPrefix


def _logs_as_connection(selectable: Any) -> bool:
    return getattr(type(selectable), "logPrefix", None) is _CONNECTION_LOG_PREFIX


class _Dispatch:
    """An fd event for a selectable: ``callWithLogger(selectable, _readOrWrite, ...)``, cheaper.

    Twisted runs every read and write inside a log context whose ``system``
    is the selectable's ``logPrefix()``.  ``callWithLogger`` builds that
    context afresh per event; this keeps it per registration and rebuilds it
    only when the prefix changes (a connection's prefix changes once, when
    its protocol is attached), so log events still carry the right system.
    """

    __slots__ = ("_context", "_logstr", "_method", "_prefix", "_reactor", "_read", "_selectable")

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
        self._logstr = _logs_as_connection(selectable)
        """Whether ``logPrefix()`` is Twisted's own for connections, ``return self.logstr``:
        then the attribute is read instead of calling it (one call less per event)."""

    def __call__(self) -> None:
        selectable = self._selectable
        try:
            prefix = selectable.logstr if self._logstr else selectable.logPrefix()
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - as callWithLogger does
            prefix = "(buggy logPrefix method)"
            legacy_log.err(system=prefix)
        if prefix != self._prefix:
            self._setPrefix(prefix)
        reactor = self._reactor
        meter = reactor._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(self)
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
        finally:
            if outer is not None:
                meter.exit(outer)

    def _setPrefix(self, prefix: object) -> None:
        log_context = dict(twisted_context.get(ILogContext))
        log_context["system"] = prefix
        self._context = {ILogContext: log_context}
        self._prefix = prefix

    def describe(self) -> str:
        """The user's method this dispatch runs: the protocol's, for a connection."""
        selectable = self._selectable
        protocol = getattr(selectable, "protocol", None)
        if self._read and protocol is not None:
            return f"{qualified_name(type(protocol))}.dataReceived"
        method = "doRead" if self._read else "doWrite"
        return f"{qualified_name(type(selectable))}.{method}"

    def _run(self, selectable: Any) -> None:
        if not self._read:
            self._method(selectable, False)
            return
        reactor = self._reactor
        now = reactor._reading
        now.selectable = selectable
        try:
            self._method(selectable, True)
        finally:
            now.selectable = None
        # What the read wrote goes out now, in the same callback: as a reactor
        # that finds the socket readable and writable in one poll does.
        if selectable in reactor._soonWriters:
            reactor._flush(selectable, False)


class _ConnectionRead(_Dispatch):
    """A read of one of the hub's own TCP connections: the hot path, in one frame.

    What :class:`_Dispatch`, Twisted's ``_readOrWrite`` and
    ``tcp.Connection.doRead`` do for a read (the log context, the accounting
    bracket, disconnecting a selectable whose fd is gone, ``recv``, logging
    what raises, disconnecting with what it returns, then flushing what the
    read queued), with three calls less per read.  ``_dataReceived`` stays
    Twisted's own frame (see ``_compat.DATA_RECEIVED``).  Only for the
    transports of :mod:`bridges.twisted._tcp`, whose ``logPrefix()`` is
    Twisted's ``return self.logstr`` and whose writes mostly leave nothing
    queued (:class:`~bridges.twisted._compat.SendsAtOnce`).
    """

    __slots__ = ("_inline", "_meter", "_now", "_soon", "_stack")

    def __init__(self, reactor: HubReactor, selectable: Any, read: bool) -> None:
        super().__init__(reactor, selectable, read)
        self._inline = reads_like_twisted(type(selectable))
        # What the read needs of the reactor, in slots: the reactor's __dict__ has
        # too many keys for CPython's fast attribute access.  They change only when
        # the reactor binds to a hub, and a registration never outlives its binding
        # (unbind() removes every fd from the hub).
        self._meter = reactor._meter
        self._stack = reactor._logContextStack
        self._now = reactor._reading
        self._soon = reactor._soonWriters

    def __call__(self) -> None:
        stack = self._stack
        if stack is None:  # Twisted's context tracker was replaced: the general path
            _Dispatch.__call__(self)
            return
        selectable = self._selectable
        prefix = selectable.logstr
        if prefix != self._prefix:
            self._setPrefix(prefix)
        meter = self._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(self)
        stack.append(self._context)
        try:
            now = self._now
            now.selectable = selectable
            try:
                # selectable.fileno() is its socket's (tcp.Connection.__init__); both
                # are deleted by connectionLost, after which fileno() is -1.  Asked of
                # the socket: CPython calls a bound method held by an instance slowly.
                try:
                    sock = selectable.socket
                except AttributeError:
                    sock = None
                if sock is None or sock.fileno() == -1:
                    self._reactor._disconnect(selectable, NO_FILEDESC, True)
                else:
                    try:
                        if self._inline and selectable._ownDoRead is None:
                            # tcp.Connection.doRead, inlined (_compat.reads_like_twisted)
                            try:
                                data = sock.recv(selectable.bufferSize)
                            except OSError as exc:
                                why = None if exc.args[0] == EWOULDBLOCK else CONNECTION_LOST
                            else:
                                why = DATA_RECEIVED(selectable, data)
                        else:  # a connecting client, an aborted connection: their own doRead
                            why = selectable.doRead()
                        if why is CONNECTION_DONE and selectable._sendFailed:
                            why = CONNECTION_LOST  # the reset went to a send (SendsAtOnce)
                    except Exception as exc:  # noqa: BLE001 - as _readOrWrite does
                        why = exc
                        self._reactor._failureLog.failure(None)
                    if why:
                        self._reactor._disconnect(selectable, why, True)
            finally:
                now.selectable = None
            selectable._sentAtOnce = False  # Twisted would have flushed it by now
            if selectable in self._soon:  # a write that was queued
                self._reactor._flush(selectable, False)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - as callWithLogger does
            legacy_log.err(system=prefix)
        finally:
            stack.pop()
            if outer is not None:
                meter.exit(outer)


class ReadingNow:
    """The connection whose read the hub's reactor dispatches now (None between reads).

    ``addWriter`` asks it: a write from a connection's own ``dataReceived`` is
    flushed when that read returns.  A slot of its own rather than a reactor
    attribute, since the read path sets it twice per read and the reactor's
    ``__dict__`` is slow to write (see :class:`_ConnectionRead`).
    """

    __slots__ = ("selectable",)

    def __init__(self) -> None:
        self.selectable: Any = None


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
    return safe and not _has_own_do_write(writer)


def _has_own_do_write(writer: Any) -> bool:
    """Whether ``writer`` has a ``doWrite`` of its own (a connecting client's ``doConnect``).

    Asked without building the ``__dict__`` of the hub's transports (see
    :class:`~bridges.twisted._compat.OwnMethod`).
    """
    if isinstance(writer, SendsAtOnce):
        return writer._ownDoWrite is not None
    return "doWrite" in writer.__dict__


class FdsWithSoonWrite:
    """Readers and writers of the hub's reactor (a mixin of HubReactor)."""

    _writerFds: dict[Any, int]

    def addReader(self, reader: Any) -> None:
        readers, _ = _fd_tables(self)
        if reader in readers or _is_continuously_polled(self, reader):
            return
        hub = self._hub
        if hub is None:
            raise not_bound("addReader")
        fd = reader.fileno()
        if not self._claim(hub.add_reader, fd, reader, True):
            _polling(self).addReader(reader)
            return
        readers[reader] = fd

    def addWriter(self, writer: Any) -> None:
        soon = self._soonWriters
        if writer in soon:
            return
        if (
            writer is self._reading.selectable
            and _SAFE_WRITERS.get(type(writer))
            and self.soonWrite
            and not _has_own_do_write(writer)
            and writer not in self._writerFds
        ):
            # The hot path: a connection writing from its own dataReceived (an fd
            # that epoll watches, so never continuously polled).  The read's
            # dispatch writes it when the read returns (see _Dispatch._run).
            soon[writer] = _NO_HANDLE
            return
        _, writers = _fd_tables(self)
        if writer in writers:
            return
        if _is_continuously_polled(self, writer):
            return
        if self.soonWrite and _writes_safely_when_not_writable(writer):
            loop = self._hubLoop
            if loop is None:
                raise not_bound("addWriter")
            if writer is self._reading.selectable:
                self._soonWriters[writer] = _NO_HANDLE
            else:
                self._soonWriters[writer] = loop.call_soon(self._writeSoon, writer)
            return
        self._registerWriter(writer)

    def _registerWriter(self, writer: Any) -> None:
        _, writers = _fd_tables(self)
        hub = self._hub
        if hub is None:
            raise not_bound("addWriter")
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
        dispatch = getattr(writer, _WRITE_DISPATCH, None)
        if dispatch is None or dispatch._reactor is not self:
            dispatch = _Dispatch(self, writer, False, self._flush)
            setattr(writer, _WRITE_DISPATCH, dispatch)
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
            kind = _Dispatch
            if read and isinstance(selectable, SendsAtOnce) and _logs_as_connection(selectable):
                kind = _ConnectionRead
            # Its bound __call__: the loop calls a bound method faster than an object.
            add(fd, kind(self, selectable, read).__call__, owner=OWNER)
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
