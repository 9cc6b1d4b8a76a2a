"""asyncore's error rules, one test each, as the hub applies them."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import struct
from typing import Any

import pytest
from _asyncore_helpers import (
    EchoServer,
    Recorder,
    asyncore,
    ba,
    collect_reports,
    connect_pair,
    run,
    until,
)

pytestmark = pytest.mark.timeout(60)

needs_epoll = pytest.mark.skipif(
    not hasattr(select, "epoll"), reason="exceptional conditions are watched with epoll (Linux)"
)


def raising_reader(exc: BaseException) -> tuple[Recorder, socket.socket]:
    """A dispatcher whose next read handler raises ``exc``, and its peer (data already sent)."""
    ours, peer = connect_pair()
    dispatcher = Recorder(ours)

    def handle_read() -> None:
        dispatcher.calls.append("read")
        raise exc

    dispatcher.handle_read = handle_read  # type: ignore[method-assign]
    peer.send(b"x")
    return dispatcher, peer


def test_an_exception_in_a_handler_goes_to_handle_error_with_the_exception_current() -> None:
    boom = ValueError("boom")

    async def main() -> tuple[list[str], list[BaseException]]:
        dispatcher, peer = raising_reader(boom)
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        peer.close()
        return dispatcher.calls, dispatcher.errors

    calls, errors = run(main)
    assert calls == ["read", "error"]
    assert errors == [boom]


def test_an_oserror_with_a_disconnect_errno_goes_to_handle_close() -> None:
    async def main() -> list[str]:
        dispatcher, peer = raising_reader(ConnectionResetError(errno.ECONNRESET, "reset"))
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        peer.close()
        return dispatcher.calls

    assert run(main) == ["read", "close"]


def test_an_oserror_with_another_errno_goes_to_handle_error() -> None:
    async def main() -> list[str]:
        dispatcher, peer = raising_reader(PermissionError(errno.EACCES, "denied"))
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        peer.close()
        return dispatcher.calls

    assert run(main) == ["read", "error"]


def test_exit_now_ends_the_loop_waiting_on_the_dispatchers_map_with_that_exception() -> None:
    stop = asyncore.ExitNow("enough")

    async def main() -> BaseException:
        dispatcher, peer = raising_reader(stop)
        with pytest.raises(asyncore.ExitNow) as caught:
            await asyncio.wait_for(ba.loop(), 5)
        dispatcher.close()
        peer.close()
        return caught.value

    assert run(main) is stop


def test_exit_now_with_nobody_awaiting_loop_is_reported_and_the_hub_goes_on() -> None:
    stop = asyncore.ExitNow("nobody listens")

    async def main() -> tuple[list[dict[str, Any]], bytes]:
        reports = collect_reports()
        dispatcher, peer = raising_reader(stop)
        await until(lambda: bool(reports), "the ExitNow was reported")
        dispatcher.close()
        peer.close()
        server = EchoServer()  # the hub still serves dispatchers
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"still here")
        got = await reader.readexactly(10)
        writer.close()
        server.close()
        return reports, got

    reports, got = run(main)
    assert [r["exception"] for r in reports] == [stop]
    assert "no `await bridges.asyncore.loop()`" in reports[0]["message"]
    assert got == b"still here"


def test_keyboard_interrupt_in_a_handler_propagates_out_of_the_hub_like_in_asyncio() -> None:
    async def main() -> None:
        raising_reader(KeyboardInterrupt())
        await asyncio.sleep(5)

    with pytest.raises(KeyboardInterrupt):
        run(main)
    assert not isinstance(asyncore.socket_map, ba.SocketMap)
    assert asyncore.socket_map == {}  # the stop sequence closed the dispatcher


def test_system_exit_in_a_handler_propagates_out_of_the_hub_like_in_asyncio() -> None:
    async def main() -> None:
        raising_reader(SystemExit(3))
        await asyncio.sleep(5)

    with pytest.raises(SystemExit) as caught:
        run(main)
    assert caught.value.code == 3


def test_the_hub_runs_normally_after_a_keyboard_interrupt_escaped_it() -> None:
    async def interrupted() -> None:
        raising_reader(KeyboardInterrupt())
        await asyncio.sleep(5)

    async def normal() -> bytes:
        server = EchoServer()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"after")
        got = await reader.readexactly(5)
        writer.close()
        server.close()
        return got

    with pytest.raises(KeyboardInterrupt):
        run(interrupted)
    assert run(normal) == b"after"


def test_an_exception_from_handle_error_itself_is_reported_and_the_hub_goes_on() -> None:
    broken = RuntimeError("handle_error is broken")

    async def main() -> list[dict[str, Any]]:
        reports = collect_reports()
        dispatcher, peer = raising_reader(ValueError("first"))

        def handle_error() -> None:
            dispatcher.calls.append("error")
            raise broken

        dispatcher.handle_error = handle_error  # type: ignore[method-assign]
        await until(lambda: bool(reports), "the broken handle_error was reported")
        dispatcher.close()
        peer.close()
        return reports

    reports = run(main)
    assert reports[0]["exception"] is broken
    assert "handle_error() raised" in reports[0]["message"]


@needs_epoll
def test_a_socket_error_reaches_handle_expt_event_which_closes_on_so_error() -> None:
    async def main() -> tuple[list[str], list[int]]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        seen_errors: list[int] = []

        def handle_read_event() -> None:
            dispatcher.calls.append("read event")  # does not recv: the error stays for expt

        def handle_expt_event() -> None:
            dispatcher.calls.append("expt event")
            err = dispatcher.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            seen_errors.append(err)
            if err:
                dispatcher.handle_close()  # what asyncore's handle_expt_event does on SO_ERROR
            else:
                dispatcher.handle_expt()

        dispatcher.handle_read_event = handle_read_event  # type: ignore[method-assign]
        dispatcher.handle_expt_event = handle_expt_event  # type: ignore[method-assign]
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST: SO_ERROR becomes ECONNRESET
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        return dispatcher.calls, seen_errors

    calls, seen_errors = run(main)
    assert "expt event" in calls
    assert calls[-1] == "close"
    assert seen_errors == [errno.ECONNRESET]


@needs_epoll
def test_the_stock_handle_expt_event_closes_a_dispatcher_whose_socket_failed() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        dispatcher.handle_read_event = lambda: None  # type: ignore[method-assign]
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        return dispatcher.calls

    assert run(main) == ["close"]


@needs_epoll
def test_urgent_data_reaches_handle_expt() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        peer.send(b"!", socket.MSG_OOB)
        await until(lambda: "expt" in dispatcher.calls, "handle_expt ran")
        dispatcher.close()
        peer.close()
        return dispatcher.calls

    assert "expt" in run(main)


def test_a_refused_connect_goes_to_handle_error_as_in_asyncore() -> None:
    async def main() -> tuple[list[str], list[BaseException]]:
        unused = socket.socket()
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        unused.close()
        client = Recorder()
        client.want_write = True
        client.create_socket()
        client.connect(("127.0.0.1", port))
        await asyncio.wait_for(ba.closed(client), 5)
        return client.calls, client.errors

    calls, errors = run(main)
    assert calls == ["error"]
    assert isinstance(errors[0], ConnectionRefusedError)
