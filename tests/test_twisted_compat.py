"""The private details of Twisted the hub's reactor relies on: one behaviour test each.

Each test drives a *stock* ``AsyncioSelectorReactor`` (never installed) through
the function of bridges/twisted/_compat.py named in its docstring, and checks
what Twisted then does.  Checked on Twisted 23.10 - 26.10; a failure after a
Twisted upgrade names the function to update.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Iterator

import pytest
from twisted.internet import abstract, defer, error, protocol
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.python import context
from twisted.python.log import ILogContext

from bridges.twisted import _compat

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def stock(loop: asyncio.AbstractEventLoop) -> Iterator[AsyncioSelectorReactor]:
    reactor = AsyncioSelectorReactor(loop)
    try:
        yield reactor
    finally:
        reactor.removeReader(reactor.waker)
        reactor.waker.connectionLost(None)


class _Reader(abstract.FileDescriptor):
    def __init__(self, reactor: Any, sock: socket.socket) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.reads = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        self.reads += 1


@pytest.fixture
def reader(stock: AsyncioSelectorReactor) -> Iterator[_Reader]:
    left, right = socket.socketpair()
    try:
        yield _Reader(stock, left)
    finally:
        left.close()
        right.close()


def test_fd_tables_map_each_selectable_to_its_fd(
    stock: AsyncioSelectorReactor, reader: _Reader
) -> None:
    """_fd_tables reads ``_readers``/``_writers``."""
    stock.addReader(reader)
    readers, writers = _compat._fd_tables(stock)
    assert readers[reader] == reader.fileno()
    assert reader not in writers
    stock.removeReader(reader)
    assert reader not in _compat._fd_tables(stock)[0]


def test_read_or_write_runs_do_read_for_a_read_event(
    stock: AsyncioSelectorReactor, reader: _Reader
) -> None:
    """_read_or_write is ``_readOrWrite(selectable, read)``."""
    _compat._read_or_write(stock)(reader, True)
    assert reader.reads == 1


def test_remove_all_removes_the_selectables_given_and_returns_them(
    stock: AsyncioSelectorReactor, reader: _Reader
) -> None:
    """_remove_all is ``_removeAll(readers, writers)``."""
    stock.addReader(reader)
    assert _compat._remove_all(stock, [reader], []) == [reader]
    assert reader not in stock.getReaders()


def test_internal_readers_hold_the_reactors_own_waker(stock: AsyncioSelectorReactor) -> None:
    """_internal_readers reads ``_internalReaders``."""
    assert stock.waker in _compat._internal_readers(stock)


def test_a_reader_that_epoll_refuses_is_continuously_polled(
    stock: AsyncioSelectorReactor, tmp_path: Any
) -> None:
    """_is_continuously_polled and _polling read ``_continuousPolling``'s tables."""
    with open(tmp_path / "regular", "wb") as regular:
        file_reader = _Reader(stock, regular)  # type: ignore[arg-type]
        stock.addReader(file_reader)
        try:
            assert _compat._is_continuously_polled(stock, file_reader)
        finally:
            stock.removeReader(file_reader)
        assert not _compat._is_continuously_polled(stock, file_reader)


def test_log_context_stack_is_where_context_call_pushes_its_context() -> None:
    """_log_context_stack reads the per-thread ``ContextTracker``'s ``contexts``."""
    seen: list[Any] = []

    def inside() -> None:
        stack = _compat._log_context_stack()
        assert stack is not None
        seen.append(stack[-1].get(ILogContext))

    context.call({ILogContext: {"system": "probe"}}, inside)
    assert seen == [{"system": "probe"}]


def test_mark_stopped_makes_a_second_stop_refused_as_not_running(
    stock: AsyncioSelectorReactor,
) -> None:
    """_mark_stopped sets ``_stopped``, which stop() checks."""
    stock.startRunning(installSignalHandlers=False)
    assert _compat._mark_stopped(stock) is True
    assert _compat._mark_stopped(stock) is False
    with pytest.raises(error.ReactorNotRunning):
        stock.stop()


def test_reset_run_state_lets_a_stopped_reactor_start_again(
    stock: AsyncioSelectorReactor,
) -> None:
    """_reset_run_state clears ``_started``, ``_stopped``, ``_justStopped``, ``_startedBefore``."""
    stock.startRunning(installSignalHandlers=False)
    stock.stop()
    stock.fireSystemEvent("shutdown")
    with pytest.raises(error.ReactorNotRestartable):
        stock.startRunning(installSignalHandlers=False)
    _compat._reset_run_state(stock)
    stock.startRunning(installSignalHandlers=False)
    assert stock.running


def test_ensure_trigger_adds_a_trigger_once(stock: AsyncioSelectorReactor) -> None:
    """_ensure_trigger reads a ``_ThreePhaseEvent``'s phase lists."""
    calls: list[str] = []

    def trigger() -> None:
        calls.append("fired")

    _compat._ensure_trigger(stock, "during", "custom", trigger)
    _compat._ensure_trigger(stock, "during", "custom", trigger)
    stock.fireSystemEvent("custom")
    assert calls == ["fired"]


def test_abandon_event_drops_the_triggers_a_late_before_deferred_would_run(
    stock: AsyncioSelectorReactor,
) -> None:
    """_abandon_event empties the phase lists and resets ``state``."""
    late: defer.Deferred[None] = defer.Deferred()
    calls: list[str] = []
    stock.addSystemEventTrigger("before", "custom", lambda: late)
    stock.addSystemEventTrigger("during", "custom", lambda: calls.append("during"))
    stock.fireSystemEvent("custom")
    dropped = _compat._abandon_event(stock, "custom")
    assert len(dropped) == 1
    late.callback(None)
    assert calls == []


def test_take_threadpool_triggers_leaves_the_pool_running_at_shutdown(
    stock: AsyncioSelectorReactor,
) -> None:
    """_take_threadpool_triggers removes ``_threadpoolStartupID``/``threadpoolShutdownID``."""
    pool = stock.getThreadPool()
    stock.startRunning(installSignalHandlers=False)
    try:
        assert pool.started
        _compat._take_threadpool_triggers(stock)
        stock.fireSystemEvent("shutdown")
        assert pool.started
    finally:
        pool.stop()


def test_set_loop_points_the_stock_reactor_at_another_loop(
    stock: AsyncioSelectorReactor, loop: asyncio.AbstractEventLoop
) -> None:
    """_set_loop sets ``_asyncioEventloop``, where callLater schedules."""
    other = asyncio.new_event_loop()
    try:
        _compat._set_loop(stock, other)
        stock.callLater(0, lambda: None)
        assert other._scheduled or other._ready  # type: ignore[attr-defined]
    finally:
        _compat._set_loop(stock, loop)
        other.close()


def test_callbacks_of_holds_the_pairs_a_deferred_runs_in_order_when_it_fires() -> None:
    """_callbacks_of: a pair appended to it runs after those added before, on either path."""
    seen: list[tuple[str, object]] = []
    succeeded: defer.Deferred[int] = defer.Deferred()
    failed: defer.Deferred[int] = defer.Deferred()
    for d in (succeeded, failed):
        d.addBoth(lambda outcome: seen.append(("added", outcome)) or outcome)
        _compat._callbacks_of(d).append(
            (
                (lambda result: seen.append(("result", result)), (), {}),
                (lambda failure: seen.append(("failure", failure.value)), (), {}),
            )
        )
    error = ValueError("boom")
    succeeded.callback(1)
    failed.errback(error)
    assert [entry[0] for entry in seen] == ["added", "result", "added", "failure"]
    assert seen[1] == ("result", 1)
    assert seen[3] == ("failure", error)


class _Lost(_Reader):
    def __init__(self, reactor: Any, sock: socket.socket) -> None:
        super().__init__(reactor, sock)
        self.reasons: list[Any] = []

    def connectionLost(self, reason: Any) -> None:
        self.reasons.append(reason)


def test_no_filedesc_is_what_read_or_write_disconnects_a_closed_fd_with(
    stock: AsyncioSelectorReactor,
) -> None:
    """NO_FILEDESC is ``posixbase._NO_FILEDESC``, the reason for an fd closed under a reader."""
    left, right = socket.socketpair()
    right.close()
    lost = _Lost(stock, left)
    left.close()  # fileno() is now -1
    _compat._read_or_write(stock)(lost, True)
    assert [reason.value for reason in lost.reasons] == [_compat.NO_FILEDESC]
    assert isinstance(_compat.NO_FILEDESC, error.ConnectionFdescWentAway)


def test_disconnect_selectable_loses_the_connection_with_the_failure_of_the_reason(
    stock: AsyncioSelectorReactor,
) -> None:
    """_disconnect_selectable is ``_disconnectSelectable(selectable, why, isRead)``."""
    left, right = socket.socketpair()
    try:
        lost = _Lost(stock, left)
        _compat._disconnect_selectable(stock)(lost, error.ConnectionDone(), True)
        assert [reason.type for reason in lost.reasons] == [error.ConnectionDone]
    finally:
        left.close()
        right.close()


def test_failure_logger_is_the_logger_read_or_write_logs_a_raising_do_read_with(
    stock: AsyncioSelectorReactor,
) -> None:
    """_failure_logger reads ``_log``; ``_readOrWrite`` logs what doRead raises through it."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []

    class Raises(_Lost):
        def doRead(self) -> None:
            raise ZeroDivisionError

    left, right = socket.socketpair()
    globalLogPublisher.addObserver(events.append)
    try:
        raising = Raises(stock, left)
        _compat._read_or_write(stock)(raising, True)
    finally:
        globalLogPublisher.removeObserver(events.append)
        left.close()
        right.close()
    failures = [event for event in events if "log_failure" in event]
    assert [event["log_failure"].type for event in failures] == [ZeroDivisionError]
    assert failures[0]["log_namespace"] == _compat._failure_logger(stock).namespace
    assert [reason.type for reason in raising.reasons] == [ZeroDivisionError]


@pytest.fixture
def connection(stock: AsyncioSelectorReactor) -> Iterator[Any]:
    from twisted.internet import tcp

    left, right = socket.socketpair()
    try:
        yield tcp.Connection(left, protocol.Protocol(), stock)
    finally:
        left.close()
        right.close()


def test_a_queued_write_waits_in_temp_data_buffer(connection: Any) -> None:
    """SendsAtOnce sends at once only while ``_tempDataBuffer`` and ``dataBuffer`` are empty."""
    connection.connected = True
    assert not connection._tempDataBuffer
    assert not connection.dataBuffer
    connection.write(b"queued")
    assert connection._tempDataBuffer == [b"queued"]
    connection.stopWriting()


def test_closing_states_are_the_flags_sends_at_once_checks(connection: Any) -> None:
    """``disconnecting``, ``_writeDisconnecting`` and ``_aborting`` say a connection is closing."""
    connection.connected = True
    assert not connection.disconnecting
    assert not connection._writeDisconnecting
    assert not connection._aborting
    connection.loseWriteConnection()
    assert connection._writeDisconnecting
    assert not connection._writeDisconnected
    connection.loseConnection()
    assert connection.disconnecting
    connection.abortConnection()
    assert connection._aborting
    connection.stopWriting()


def test_abort_connection_gives_the_connection_a_do_read_and_do_write_of_its_own(
    connection: Any,
) -> None:
    """OwnMethod: Twisted replaces ``doRead``/``doWrite`` on the instance, with no-ops."""
    connection.connected = True
    connection.abortConnection()
    assert {"doRead", "doWrite"} <= set(vars(connection))
    assert connection.doRead() is None
    assert connection.doWrite() is None
    connection.stopWriting()


def test_per_connection_defaults_are_plain_class_values_of_a_connection(connection: Any) -> None:
    """``_PER_CONNECTION``: class-level values (no descriptors) a new connection inherits."""
    from twisted.internet import tcp

    for name in _compat._PER_CONNECTION:
        owner = next(klass for klass in tcp.Server.__mro__ if name in vars(klass))
        assert not hasattr(type(vars(owner)[name]), "__get__"), name
        assert name not in vars(connection), name
