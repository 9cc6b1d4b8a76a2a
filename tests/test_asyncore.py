"""asyncore dispatchers on the hub: the socket map, interest, the awaitable API, attach/detach."""

from __future__ import annotations

import asyncio
import contextvars
import os
import select
import socket
import sys
import threading
from typing import Any

import pytest
from _asyncore_helpers import (
    LOOPS,
    Echo,
    EchoServer,
    Recorder,
    asyncore,
    ba,
    connect_pair,
    enough_fds,
    needs_uvloop,
    run,
    until,
)

import bridges
from bridges.asyncore import _readiness, _sweep

pytestmark = pytest.mark.timeout(60)


async def echo_once(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    got = await reader.readexactly(len(payload))
    writer.close()
    await writer.wait_closed()
    return got


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_an_echo_server_on_the_default_map_serves_an_asyncio_client(loop_factory: Any) -> None:
    async def main() -> bytes:
        server = EchoServer()
        try:
            return await echo_once(server.port, b"hello dispatcher")
        finally:
            server.close()

    assert run(main, loop_factory) == b"hello dispatcher"


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_output_larger_than_the_socket_buffer_is_written_as_the_socket_drains(
    loop_factory: Any,
) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB: dispatcher_with_send must wait for writable

    async def main() -> bool:
        server = EchoServer()
        try:
            return await echo_once(server.port, payload) == payload
        finally:
            server.close()

    assert run(main, loop_factory)


def test_the_hub_can_run_asyncore_again_and_again_in_one_process() -> None:
    async def main() -> bytes:
        server = EchoServer()
        try:
            return await echo_once(server.port, b"again")
        finally:
            server.close()

    for _ in range(5):
        assert run(main) == b"again"


def test_asyncore_gets_its_own_map_and_loop_back_when_the_hub_stops() -> None:
    original_map, original_loop = asyncore.socket_map, asyncore.loop
    during: dict[str, Any] = {}

    async def main() -> None:
        during["map"] = asyncore.socket_map
        during["loop"] = asyncore.loop

    run(main)
    assert isinstance(during["map"], ba.SocketMap)
    assert during["loop"] is not original_loop
    assert asyncore.socket_map is original_map
    assert asyncore.loop is original_loop


def test_dispatchers_made_before_the_hub_started_are_served_by_it() -> None:
    server = EchoServer()  # in asyncore's own map: no hub runs yet

    async def main() -> bytes:
        try:
            return await echo_once(server.port, b"made before")
        finally:
            server.close()

    assert run(main) == b"made before"
    assert server.port not in asyncore.socket_map


def test_a_dispatcher_in_an_explicit_socket_map_is_served() -> None:
    async def main() -> bytes:
        own = ba.SocketMap()
        server = EchoServer(map=own)
        try:
            return await echo_once(server.port, b"own map")
        finally:
            server.close()

    assert run(main) == b"own map"


def test_a_plain_dict_map_is_served_once_loop_is_awaited_on_it() -> None:
    async def main() -> bytes:
        plain: dict[int, Any] = {}
        server = EchoServer(map=plain)
        waiting = asyncio.ensure_future(ba.loop(map=plain))
        got = await echo_once(server.port, b"plain dict")
        server.close()
        await asyncio.wait_for(waiting, 5)
        return got

    assert run(main) == b"plain dict"


def test_loop_returns_when_the_last_dispatcher_of_its_map_closes() -> None:
    async def main() -> bool:
        server = EchoServer()
        asyncio.get_running_loop().call_later(0.05, server.close)
        await asyncio.wait_for(ba.loop(), 5)
        return len(asyncore.socket_map) == 0

    assert run(main)


def test_loop_returns_after_its_timeout_while_dispatchers_stay_open() -> None:
    async def main() -> bool:
        server = EchoServer()
        await ba.loop(timeout=0.05)
        still_open = server.port == server.socket.getsockname()[1] and len(asyncore.socket_map) == 1
        server.close()
        return still_open

    assert run(main)


def test_closed_returns_when_the_dispatcher_closes() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        peer.close()  # the dispatcher reads EOF and closes
        await asyncio.wait_for(ba.closed(dispatcher), 5)
        return dispatcher.calls

    assert run(main)[-1] == "close"


def test_closed_returns_at_once_for_a_dispatcher_already_closed() -> None:
    async def main() -> None:
        server = EchoServer()
        server.close()
        await asyncio.wait_for(ba.closed(server), 1)

    run(main)


def test_cancelling_a_wait_for_closed_leaves_the_dispatcher_open() -> None:
    async def main() -> bool:
        server = EchoServer()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ba.closed(server), 0.05)
        still_open = server.socket.fileno() in asyncore.socket_map
        server.close()
        return still_open

    assert run(main)


def test_awaiting_a_dispatcher_through_bridges_awaitable_waits_for_it_to_close() -> None:
    async def main() -> None:
        server = EchoServer()
        asyncio.get_running_loop().call_later(0.02, server.close)
        await asyncio.wait_for(bridges.awaitable(server), 5)

    run(main)


def test_blocking_asyncore_loop_inside_the_hub_raises_a_bridge_error_naming_the_fix() -> None:
    async def main() -> None:
        with pytest.raises(ba.HubOwnsLoopError, match=r"await bridges\.asyncore\.loop"):
            asyncore.loop()

    run(main)
    assert issubclass(ba.HubOwnsLoopError, bridges.BridgeError)


def test_another_thread_may_still_run_asyncore_loop_on_a_map_of_its_own() -> None:
    async def main() -> bytes:
        own: dict[int, Any] = {}
        server = EchoServer(map=own)
        thread = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.01, "map": own})
        thread.start()
        got = await asyncio.get_running_loop().run_in_executor(
            None, _blocking_echo, server.port, b"thread"
        )
        asyncore.close_all(own)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
        return got

    assert run(main) == b"thread"


def _blocking_echo(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        return got


def test_changing_the_default_map_from_another_thread_is_refused() -> None:
    async def main() -> BaseException | None:
        errors: list[BaseException] = []

        def make() -> None:
            try:
                EchoServer()
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                errors.append(exc)

        await asyncio.get_running_loop().run_in_executor(None, make)
        return errors[0] if errors else None

    error = run(main)
    assert isinstance(error, ba.WrongThreadError)


def test_stopping_the_hub_closes_the_dispatchers_still_open_and_releases_their_fds() -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        server = EchoServer()
        ours, peer = connect_pair()
        client = Recorder(ours)
        seen.update(server=server, client=client, peer=peer)
        seen["hub"] = bridges.current_hub()

    run(main)
    assert seen["server"].socket.fileno() == -1
    assert seen["client"].socket.fileno() == -1
    assert seen["hub"].fd_owners() == {"readers": {}, "writers": {}}
    seen["peer"].close()


def test_a_dispatcher_fd_is_owned_so_another_framework_cannot_take_it_silently() -> None:
    async def main() -> None:
        server = EchoServer()
        await asyncio.sleep(0)  # asyncore polls a new dispatcher from the next pass on
        try:
            with pytest.raises(bridges.FdConflictError, match="owned by 'asyncore'"):
                bridges.current_hub().add_reader(server.socket, lambda: None, owner="someone")
        finally:
            server.close()

    run(main)


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_the_hub_registry_names_asyncore_as_owner_of_what_each_dispatcher_watches(
    loop_factory: Any,
) -> None:
    async def main() -> tuple[int, dict[str, dict[int, str]], dict[str, dict[int, str]]]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        dispatcher.want_write = True
        await until(lambda: "write" in dispatcher.calls, "the dispatcher wrote")
        reading_only = bridges.current_hub().fd_owners()  # handle_write turned want_write off
        fd = dispatcher.socket.fileno()
        dispatcher.want_read = False
        ba.refresh(dispatcher)
        peer.send(b"x")  # a read event on the registration kept lazily drops it
        await until(
            lambda: fd not in bridges.current_hub().fd_owners()["readers"], "reading dropped"
        )
        nothing = bridges.current_hub().fd_owners()
        dispatcher.close()
        peer.close()
        return fd, reading_only, nothing

    fd, reading_only, nothing = run(main, loop_factory)
    assert reading_only["readers"].get(fd) == "asyncore"
    assert fd not in reading_only["writers"]
    assert fd not in nothing["readers"]
    assert fd not in nothing["writers"]


def test_loop_and_closed_need_asyncore_attached() -> None:
    async def main() -> None:
        with pytest.raises(bridges.HubNotRunningError, match="asyncore is not attached"):
            await ba.loop()

    bridges.run(main, frameworks=None)


def test_dispatchers_still_keep_their_map_in_the_private_map_attribute() -> None:
    # bridges.asyncore._map_of relies on it (stdlib asyncore, pyasyncore, wasyncore).
    own: dict[int, Any] = {}
    dispatcher = asyncore.dispatcher(map=own)
    assert dispatcher._map is own


# -- interest ------------------------------------------------------------------------


def test_interest_is_re_evaluated_after_the_dispatchers_own_handler() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)

        def handle_read() -> None:
            dispatcher.calls.append("read")
            dispatcher.recv(100)
            dispatcher.want_write = True  # decided in its own handler

        dispatcher.handle_read = handle_read  # type: ignore[method-assign]
        peer.send(b"x")
        await until(lambda: "write" in dispatcher.calls, "the dispatcher was asked to write")
        dispatcher.close()
        peer.close()
        return dispatcher.calls

    assert run(main)[:2] == ["read", "write"]


def test_a_handler_that_changes_another_dispatchers_mind_is_heard_on_the_same_pass() -> None:
    async def main() -> list[str]:
        a_sock, a_peer = connect_pair()
        b_sock, b_peer = connect_pair()
        first, second = Recorder(a_sock), Recorder(b_sock)

        def handle_read() -> None:
            first.recv(100)
            second.want_write = True

        first.handle_read = handle_read  # type: ignore[method-assign]
        a_peer.send(b"x")
        await until(lambda: "write" in second.calls, "the second dispatcher was asked to write")
        for thing in (first, second, a_peer, b_peer):
            thing.close()
        return second.calls

    assert run(main) == ["write"]


def test_a_dispatcher_that_changes_its_mind_without_any_event_is_heard() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        dispatcher.want_read = False
        peer.send(b"waiting")
        await asyncio.sleep(0.02)
        assert dispatcher.calls == []
        dispatcher.want_read = True  # asyncio code flips it: no fd event follows
        await until(lambda: "read" in dispatcher.calls, "the periodic sweep noticed")
        dispatcher.close()
        peer.close()
        return dispatcher.calls

    assert run(main) == ["read"]


def test_a_trigger_pulled_by_another_thread_is_followed_by_a_sweep_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # waitress's worker threads fill a channel's buffer, then pull the server's
    # trigger: the channel's writable() changed without an event of its own.
    monkeypatch.setattr(_sweep, "SWEEP_SHARE", 1e-9)  # budgeted sweeps: next to never

    class Trigger(Recorder):
        def pull_trigger(self) -> None:
            self.peer.send(b"x")

    async def main() -> list[str]:
        ours, peer = connect_pair()
        trigger_sock, trigger_peer = connect_pair()
        channel = Recorder(ours)
        trigger = Trigger(trigger_sock)
        trigger.peer = trigger_peer
        await asyncio.sleep(0.01)  # both registered
        ba.refresh()  # a sweep now: the budget allows none for ages after it

        def worker() -> None:
            channel.want_write = True
            trigger.pull_trigger()

        threading.Thread(target=worker).start()
        await until(lambda: "write" in channel.calls, "the channel was asked to write")
        for thing in (channel, trigger, peer, trigger_peer):
            thing.close()
        return channel.calls

    assert run(main) == ["write"]


def test_refresh_applies_a_change_of_mind_at_once() -> None:
    async def main() -> list[str]:
        ours, peer = connect_pair()
        dispatcher = Recorder(ours)
        dispatcher.want_write = True
        ba.refresh(dispatcher)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        dispatcher.close()
        peer.close()
        return dispatcher.calls

    assert run(main) == ["write"]


def test_an_accepting_dispatcher_is_never_asked_to_write() -> None:
    async def main() -> list[str]:
        server = EchoServer()
        calls: list[str] = []
        server.writable = lambda: True  # type: ignore[method-assign]
        server.handle_write = lambda: calls.append("write")  # type: ignore[method-assign]
        await echo_once(server.port, b"x")
        server.close()
        return calls

    assert run(main) == []


def test_a_connecting_dispatcher_gets_handle_connect_then_writes() -> None:
    async def main() -> list[str]:
        server = EchoServer()
        calls: list[str] = []

        class Client(asyncore.dispatcher_with_send):
            def handle_connect(self) -> None:
                calls.append("connect")
                self.send(b"ping")

            def handle_read(self) -> None:
                calls.append(self.recv(100).decode())
                self.close()

        client = Client()
        client.create_socket()
        client.connect(("127.0.0.1", server.port))
        await asyncio.wait_for(ba.closed(client), 5)
        server.close()
        return calls

    assert run(main) == ["connect", "ping"]


def test_echo_to_a_thousand_concurrent_asyncio_clients() -> None:
    enough_fds(4096)

    async def client(port: int, i: int, ready: asyncio.Event) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await ready.wait()  # every connection is open before anyone talks
        payload = b"client %d\n" % i
        writer.write(payload)
        await writer.drain()
        ok = await reader.readexactly(len(payload)) == payload
        writer.close()
        return ok

    async def main() -> tuple[int, int]:
        server = EchoServer()
        ready = asyncio.Event()
        clients = [asyncio.ensure_future(client(server.port, i, ready)) for i in range(1000)]
        await until(lambda: len(server.handlers) == 1000, "1,000 connections were accepted")
        open_at_once = sum(1 for h in server.handlers if h.connected)
        ready.set()
        results = await asyncio.wait_for(asyncio.gather(*clients), 60)
        server.close()
        return open_at_once, sum(results)

    assert run(main) == (1000, 1000)


@needs_uvloop
def test_a_thousand_clients_on_uvloop() -> None:
    enough_fds(4096)

    async def main() -> int:
        server = EchoServer()

        async def one(i: int) -> bool:
            return await echo_once(server.port, b"%d" % i) == b"%d" % i

        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1000))), 60)
        server.close()
        return sum(results)

    assert run(main, "uvloop") == 1000


def test_a_hub_that_never_finished_stopping_does_not_keep_the_next_one_from_starting() -> None:
    original_map, original_loop = asyncore.socket_map, asyncore.loop
    loop = asyncio.new_event_loop()
    abandoned = bridges.Hub(frameworks=["asyncore"])

    async def start_and_abandon() -> None:
        await abandoned.__aenter__()
        EchoServer()  # left in the abandoned hub's map

    loop.run_until_complete(start_and_abandon())
    loop.close()  # as when a second Ctrl-C interrupts the stop sequence
    assert isinstance(asyncore.socket_map, ba.SocketMap)

    async def main() -> bytes:
        server = EchoServer()
        try:
            return await echo_once(server.port, b"recovered")
        finally:
            server.close()

    assert run(main) == b"recovered"
    assert asyncore.socket_map is original_map
    assert asyncore.loop is original_loop


def test_a_new_dispatcher_is_first_asked_readable_after_its_init_has_finished() -> None:
    errors: list[str] = []

    class LateState(asyncore.dispatcher):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__(sock)  # add_channel runs here, before `paused` exists
            self.paused = True

        def readable(self) -> bool:
            return not self.paused

        def handle_error(self) -> None:
            errors.append(repr(sys.exc_info()[1]))
            self.close()

    async def main() -> bool:
        ours, peer = connect_pair()
        dispatcher = LateState(ours)
        await asyncio.sleep(0.01)
        still_open = dispatcher.socket.fileno() in asyncore.socket_map
        dispatcher.close()
        peer.close()
        return still_open

    assert run(main)
    assert errors == []


def test_dispatchers_lists_what_the_hub_drives_in_every_map() -> None:
    async def main() -> tuple[bool, bool]:
        default, own = EchoServer(), EchoServer(map=ba.SocketMap())
        listed = {id(d) for d in ba.dispatchers()} == {id(default), id(own)}
        default.close()
        own.close()
        return listed, ba.dispatchers() == []

    assert run(main) == (True, True)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_handlers_run_in_a_copy_of_the_context_their_dispatcher_was_created_in() -> None:
    seen: list[tuple[str, str]] = []

    class Tagged(asyncore.dispatcher):
        def __init__(self, sock: socket.socket, name: str) -> None:
            super().__init__(sock)
            self.name = name

        def handle_read(self) -> None:
            self.recv(100)
            seen.append((self.name, request_id.get()))
            request_id.set("changed by a handler")  # stays in this dispatcher's copy

    async def main() -> None:
        pairs = []
        for name in ("first", "second"):
            request_id.set(f"made by {name}")
            ours, peer = connect_pair()
            pairs.append((Tagged(ours, name), peer))
        request_id.set("main")
        for reads in (2, 4):
            for _, peer in pairs:
                peer.send(b"x")
            await until(lambda n=reads: len(seen) == n, f"{reads} reads happened")
        for dispatcher, peer in pairs:
            dispatcher.close()
            peer.close()
        assert request_id.get() == "main"

    run(main)
    assert seen[:2] == [("first", "made by first"), ("second", "made by second")]
    assert seen[2:] == [("first", "changed by a handler"), ("second", "changed by a handler")]


def test_install_refuses_a_module_without_asyncores_interface_with_a_bridge_error() -> None:
    with pytest.raises(
        ba.AsyncoreTypeError, match=r"has no 'socket_map'\. Pass the module"
    ) as info:
        ba.install(socket)
    assert isinstance(info.value, bridges.BridgeError)
    assert isinstance(info.value, TypeError)


def test_loop_refuses_a_map_that_is_not_a_map_with_a_bridge_error_saying_what_to_pass() -> None:
    async def main() -> None:
        await ba.loop(map=[])

    with pytest.raises(ba.AsyncoreTypeError, match=r"not list\. Pass the map") as info:
        run(main)
    assert isinstance(info.value, bridges.BridgeError)
    assert isinstance(info.value, TypeError)


def test_asyncore_works_in_a_hub_entered_inside_a_loop_someone_else_runs() -> None:
    original_map = asyncore.socket_map

    async def main() -> bytes:
        async with bridges.Hub(frameworks=["asyncore"]):
            server = EchoServer()
            try:
                return await echo_once(server.port, b"inside asyncio.run")
            finally:
                server.close()

    assert asyncio.run(main()) == b"inside asyncio.run"
    assert asyncore.socket_map is original_map


def test_a_dispatcher_closed_during_a_pass_takes_its_events_of_that_pass_with_it() -> None:
    # Both dispatchers are ready in the same pass.  The first one's handler
    # closes the second and opens a third on the very fd number the second
    # had: the event polled for the second must reach neither.
    async def main() -> tuple[list[str], list[str]]:
        a_sock, a_peer = connect_pair()
        b_sock, b_peer = connect_pair()
        first, second = Recorder(a_sock), Recorder(b_sock)
        born: list[Any] = []
        await asyncio.sleep(0.01)  # both registered

        def handle_read() -> None:
            first.recv(100)
            fd = second.socket.fileno()
            second.close()
            ours, peer = connect_pair()
            if ours.fileno() != fd:
                os.dup2(ours.fileno(), fd)
                ours.close()
                ours = socket.socket(fileno=fd)
            third = Recorder(ours)
            ba.refresh(third)  # watched from now on, inside this pass
            born.extend((third, peer))

        first.handle_read = handle_read  # type: ignore[method-assign]
        a_peer.send(b"x")
        b_peer.send(b"y")
        await until(lambda: bool(born), "the first dispatcher's handler ran")
        await asyncio.sleep(0.01)
        third, peer = born
        for thing in (first, third, a_peer, b_peer, peer):
            thing.close()
        return second.calls, third.calls

    assert run(main) == ([], [])


needs_batches = pytest.mark.skipif(
    not hasattr(select, "epoll"), reason="readiness is batched with epoll (Linux)"
)


@needs_batches
def test_a_connection_alone_active_is_watched_by_the_loop_until_another_is_active() -> None:
    # On the stdlib loop the dispatchers' fds sit in one epoll set, whose
    # second epoll_wait per pass pays only when several are ready: a
    # connection alone active is watched by the loop itself, still owned by
    # asyncore in the hub's registry (reading, and writing what the socket
    # buffer would not take), and back in the batch once another is.
    big = os.urandom(4_000_000)

    async def echo(reader: Any, writer: Any, payload: bytes) -> bytes:
        writer.write(payload)
        return await reader.readexactly(len(payload))

    async def main() -> tuple[list[bytes], bool, bytes, bool, list[bytes]]:
        server = EchoServer()
        await asyncio.sleep(0)
        driver = ba._driver()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        alone = [
            await echo(reader, writer, b"%03d" % i) for i in range(3 * _readiness.LONE_BATCHES)
        ]
        [handler] = server.handlers
        watched_alone = driver.alone is not None and driver.alone.obj is handler
        hub = bridges.current_hub()
        owned = hub.fd_owners()["readers"].get(handler.socket.fileno()) == "asyncore"
        with pytest.raises(bridges.FdConflictError, match="owned by 'asyncore'"):
            hub.add_reader(handler.socket, lambda: None, owner="someone")
        echoed = await echo(reader, writer, big)
        others = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        together = await asyncio.gather(
            *(echo(r, w, b"%d" % i) for i, (r, w) in enumerate([(reader, writer), *others]))
        )
        batched_again = driver.alone is None
        for _, w in [(reader, writer), *others]:
            w.close()
        server.close()
        for each in server.handlers:
            each.close()
        return alone, watched_alone and owned, echoed, batched_again, together

    alone, watched_alone, echoed, batched_again, together = run(main)
    assert alone == [b"%03d" % i for i in range(3 * _readiness.LONE_BATCHES)]
    assert watched_alone
    assert echoed == big
    assert batched_again
    assert together == [b"0", b"1", b"2", b"3"]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_hub_waiting_for_its_next_event_arms_no_sweep_timer_finer_than_a_millisecond(
    loop_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a handful of dispatchers a sweep takes microseconds, and so did the
    # wait its budget asked for; uvloop runs a timer under a millisecond on
    # its next pass without waiting, so the hub spun between a client's
    # requests, re-arming the timer on every pass.
    checks: list[float] = []
    when_due = _sweep.Sweep._sweep_when_due

    def counted(self: Any) -> None:
        checks.append(self.loop.time())
        when_due(self)

    monkeypatch.setattr(_sweep.Sweep, "_sweep_when_due", counted)

    async def main() -> tuple[int, float]:
        ours, peer = connect_pair()
        Echo(ours)
        await asyncio.sleep(0.01)

        def ping_pong() -> None:
            for _ in range(1000):
                peer.sendall(b"x")
                peer.recv(1)

        loop = asyncio.get_running_loop()
        started, before = loop.time(), len(checks)
        await asyncio.to_thread(ping_pong)
        elapsed, count = loop.time() - started, len(checks) - before
        peer.close()
        ours.close()
        return count, elapsed

    count, elapsed = run(main, loop_factory)
    assert count <= 2 * elapsed / _sweep.SWEEP_MIN_WAIT + 10, (count, elapsed)
