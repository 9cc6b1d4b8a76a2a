"""The Twisted reactor on the hub: install, start, stop, threads, repeated runs, uvloop.

Each trap in DESIGN.md's Twisted notes has a test here whose name says which.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest
from _reports import Reports
from _twisted_helpers import LOOPS, reactor, run_twisted
from twisted.internet import error

import bridges
from bridges import twisted as bt
from bridges.twisted import HubOwnsLoopError, HubReactor

pytestmark = pytest.mark.timeout(60)


def run_in_subprocess(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- install ------------------------------------------------------------------


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_the_installed_reactor_is_the_hubs_and_runs_on_the_hubs_loop(loop_factory: str) -> None:
    async def main() -> tuple[object, bool, bool]:
        installed = reactor()
        return (
            installed,
            installed.running,
            installed._asyncioEventloop is asyncio.get_running_loop(),
        )

    installed, running, same_loop = run_twisted(main, loop_factory=loop_factory)
    assert isinstance(installed, HubReactor)
    assert running
    assert same_loop


def test_trap_reactor_installed_before_the_loop_is_refused_naming_class_and_importer() -> None:
    result = run_in_subprocess(
        """
        import sys, types
        app = types.ModuleType("myapp.handlers")
        exec("from twisted.internet import reactor", app.__dict__)
        sys.modules["myapp.handlers"] = app
        import bridges
        async def main():
            pass
        try:
            bridges.run(main, frameworks=["twisted"])
        except bridges.BridgeError as exc:
            print(type(exc).__name__)
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ForeignReactorError")
    assert "EPollReactor" in result.stdout
    assert "imported by myapp.handlers" in result.stdout
    assert "inside the code that runs on the hub" in result.stdout


def test_trap_a_stock_asyncio_reactor_installed_on_another_loop_is_refused() -> None:
    result = run_in_subprocess(
        """
        from twisted.internet import asyncioreactor
        asyncioreactor.install()
        import bridges
        from bridges import twisted as bt
        async def main():
            pass
        try:
            bridges.run(main, frameworks=["twisted"])
        except bt.ForeignReactorError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "AsyncioSelectorReactor" in result.stdout


def test_a_reactor_imported_on_the_hub_is_the_hubs_even_in_a_fresh_process() -> None:
    result = run_in_subprocess(
        """
        import bridges
        async def main():
            from twisted.internet import reactor
            return type(reactor).__name__
        print(bridges.run(main, frameworks=["twisted"]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HubReactor"


def test_reactor_run_inside_the_hub_raises_a_bridge_error_that_says_to_drop_it() -> None:
    async def main() -> None:
        reactor().run()

    with pytest.raises(HubOwnsLoopError, match=r"Drop the reactor\.run"):
        run_twisted(main)


def test_get_reactor_is_the_running_hubs_reactor() -> None:
    async def main() -> bool:
        return bt.get_reactor() is reactor()

    assert run_twisted(main)


def test_get_reactor_outside_a_hub_raises_not_attached_which_is_hub_not_running() -> None:
    with pytest.raises(bridges.NotAttachedError, match="no bridges hub is running"):
        bt.get_reactor()
    assert issubclass(bridges.NotAttachedError, bridges.HubNotRunningError)


def test_get_reactor_on_a_hub_without_twisted_says_how_to_attach_it() -> None:
    async def main() -> None:
        bt.get_reactor()

    with pytest.raises(bridges.NotAttachedError, match=r"frameworks=\[\.\.\., 'twisted'\]"):
        bridges.run(main, frameworks=None)


# -- start --------------------------------------------------------------------


def test_trap_startup_triggers_and_call_when_running_fire_before_main_runs() -> None:
    seen: list[str] = []

    async def first() -> None:
        installed = reactor()
        installed.addSystemEventTrigger("after", "startup", seen.append, "startup")

    async def second() -> list[str]:
        return list(seen)

    run_twisted(first)
    assert run_twisted(second) == ["startup"]


def test_call_when_running_inside_main_runs_at_once_because_the_reactor_runs() -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        reactor().callWhenRunning(seen.append, "ran")
        return seen

    assert run_twisted(main) == ["ran"]


def test_call_later_fires_on_the_hubs_loop() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        fired = loop.create_future()
        reactor().callLater(0.01, fired.set_result, "fired")
        return await fired

    assert run_twisted(main) == "fired"


def test_trap_thread_pool_works_defer_to_thread_and_call_from_thread() -> None:
    async def main() -> tuple[str, str]:
        from twisted.internet import threads

        worker = await bridges.awaitable(
            threads.deferToThread(lambda: threading.current_thread().name)
        )
        loop = asyncio.get_running_loop()
        called = loop.create_future()
        threading.Thread(
            target=reactor().callFromThread, args=(called.set_result, "from thread")
        ).start()
        return worker, await called

    worker, from_thread = run_twisted(main)
    assert worker != threading.current_thread().name
    assert from_thread == "from thread"


def test_blocking_call_from_thread_reaches_the_loop_and_returns_its_result() -> None:
    async def main() -> object:
        from twisted.internet import task, threads

        def in_thread() -> object:
            return threads.blockingCallFromThread(
                reactor(), lambda: task.deferLater(reactor(), 0.01, lambda: "loop result")
            )

        return await bridges.awaitable(threads.deferToThread(in_thread))

    assert run_twisted(main) == "loop result"


def test_trap_signals_stay_with_the_hub_so_asyncio_signal_handlers_keep_working() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1 via asyncio")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert run_twisted(main) == "SIGUSR1 via asyncio"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- stop ---------------------------------------------------------------------


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_trap_reactor_stop_cancels_main_and_run_returns_none(loop_factory: str) -> None:
    progress: list[str] = []

    async def main() -> str:
        reactor().callLater(0, reactor().stop)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            progress.append("main cancelled")
            raise
        return "not reached"

    assert run_twisted(main, loop_factory=loop_factory) is None
    assert progress == ["main cancelled"]


def test_reactor_stop_twice_raises_reactor_not_running_like_twisted() -> None:
    from twisted.internet.error import ReactorNotRunning

    raised: list[type[BaseException]] = []

    async def main() -> None:
        reactor().stop()
        try:
            reactor().stop()
        except ReactorNotRunning as exc:
            raised.append(type(exc))
        await asyncio.sleep(30)

    assert run_twisted(main) is None
    assert raised == [ReactorNotRunning]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_shutdown_triggers_before_during_after_run_in_order_and_before_deferreds_are_awaited(
    loop_factory: str,
) -> None:
    order: list[str] = []

    async def main() -> None:
        from twisted.internet import task

        installed = reactor()

        def slow_before() -> object:
            order.append("before")
            return task.deferLater(installed, 0.05, order.append, "before's Deferred")

        installed.addSystemEventTrigger("before", "shutdown", slow_before)
        installed.addSystemEventTrigger("during", "shutdown", order.append, "during")
        installed.addSystemEventTrigger("after", "shutdown", order.append, "after")

    run_twisted(main, loop_factory=loop_factory)
    assert order == ["before", "before's Deferred", "during", "after"]


def test_shutdown_triggers_run_when_main_raises() -> None:
    order: list[str] = []

    async def main() -> None:
        reactor().addSystemEventTrigger("before", "shutdown", order.append, "before")
        raise LookupError("main failed")

    with pytest.raises(LookupError, match="main failed"):
        run_twisted(main)
    assert order == ["before"]


def test_shutdown_triggers_can_still_use_legacy_tasks_because_twisted_detaches_first() -> None:
    async def main() -> list[str]:
        result: list[str] = []

        async def flush() -> None:
            await asyncio.sleep(0.01)
            result.append("flushed by a task at shutdown")

        reactor().addSystemEventTrigger("before", "shutdown", lambda: bt.deferred(flush()))
        return result

    assert run_twisted(main) == ["flushed by a task at shutdown"]


def test_a_shutdown_trigger_that_never_finishes_is_reported_and_does_not_hang_or_leak() -> None:
    reports = Reports()
    ran: list[str] = []

    ports: list[object] = []

    async def first() -> None:
        from twisted.internet import protocol
        from twisted.internet.defer import Deferred

        reports.install()
        installed = reactor()
        ports.append(installed.listenTCP(0, protocol.ServerFactory(), interface="127.0.0.1"))
        installed.addSystemEventTrigger("before", "shutdown", Deferred)  # never fires
        installed.addSystemEventTrigger("after", "shutdown", ran.append, "stale trigger")

    async def second() -> bool:
        return reactor().running

    bridges.run(first, frameworks=["twisted"], stop_timeout=0.2)
    assert any(isinstance(exc, bridges.StopTimeoutError) for exc in reports.exceptions)
    assert not ports[0].connected  # type: ignore[attr-defined]
    assert run_twisted(second)
    assert ran == []


def test_trap_pool_threads_never_hang_the_exit_even_waiting_for_the_loop() -> None:
    result = run_in_subprocess(
        """
        import threading, bridges
        release = threading.Event()
        async def main():
            from twisted.internet import reactor, threads
            # One worker blocks on the loop until shutdown; one never returns.
            threads.deferToThread(
                lambda: threads.blockingCallFromThread(reactor, lambda: "loop answered"))
            threads.deferToThread(release.wait)
        bridges.run(main, frameworks=["twisted"], stop_timeout=0.5)
        print("exited")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exited"


def test_the_thread_pool_is_stopped_and_released_when_the_hub_stops() -> None:
    import weakref

    refs: list[weakref.ref[object]] = []

    async def main() -> None:
        from twisted.internet import threads

        refs.append(weakref.ref(reactor().getThreadPool()))
        await bridges.awaitable(threads.deferToThread(lambda: None))

    run_twisted(main)
    gc.collect()
    assert refs[0]() is None
    assert reactor().threadpool is None


def test_sigterm_runs_the_shutdown_triggers_and_returns_none() -> None:
    result = run_in_subprocess(
        """
        import os, signal, asyncio, bridges
        async def main():
            from twisted.internet import reactor
            reactor.addSystemEventTrigger("before", "shutdown", print, "shutdown trigger ran")
            reactor.callLater(0.01, os.kill, os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)
        print(bridges.run(main, frameworks=["twisted"]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["shutdown trigger ran", "None"]


# -- repeated runs --------------------------------------------------------------


def test_trap_the_same_reactor_follows_each_new_loop_across_repeated_runs() -> None:
    async def main() -> tuple[int, int, str]:
        from twisted.internet import task

        installed = reactor()
        value = await bridges.awaitable(task.deferLater(installed, 0.001, lambda: "timer fired"))
        return id(installed), id(asyncio.get_running_loop()), value

    runs = [run_twisted(main, loop_factory=factory) for factory in LOOPS * 3]
    assert len({reactor_id for reactor_id, _, _ in runs}) == 1
    assert {value for _, _, value in runs} == {"timer fired"}


def test_delayed_calls_left_pending_by_one_run_do_not_fire_in_the_next() -> None:
    fired: list[str] = []

    async def first() -> None:
        reactor().callLater(0.05, fired.append, "leaked call")

    async def second() -> None:
        await asyncio.sleep(0.1)

    run_twisted(first)
    run_twisted(second)
    assert fired == []


def test_fds_of_one_run_are_given_back_and_the_next_run_can_listen_again() -> None:
    from twisted.internet import protocol

    async def main() -> dict[str, dict[int, str]]:
        port = reactor().listenTCP(0, protocol.ServerFactory(), interface="127.0.0.1")
        assert port.getHost().port
        return bridges.current_hub().fd_owners()

    for _ in range(3):
        owners = run_twisted(main)
        assert "twisted" in owners["readers"].values()
    assert reactor().getReaders() == []


def test_call_later_between_runs_fires_in_the_next_run_like_before_reactor_run() -> None:
    async def noop() -> None:
        pass

    run_twisted(noop)
    fired: list[str] = []
    reactor().callLater(0, fired.append, "scheduled between runs")

    async def main() -> list[str]:
        await asyncio.sleep(0.05)
        return fired

    assert run_twisted(main) == ["scheduled between runs"]


class _SocketSelectable:
    """The least a reactor needs of a reader or writer: a real socket's fd."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def logPrefix(self) -> str:
        return "test"


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("listenTCP", lambda r, s: r.listenTCP(0, _server_factory(), interface="127.0.0.1")),
        ("addReader", lambda r, s: r.addReader(_SocketSelectable(s))),
        ("addWriter", lambda r, s: r.addWriter(_SocketSelectable(s))),
        ("callFromThread", lambda r, s: r.callFromThread(print, "never")),
        ("spawnProcess", lambda r, s: r.spawnProcess(_process_protocol(), sys.executable)),
    ],
    ids=["listenTCP", "addReader", "addWriter", "callFromThread", "spawnProcess"],
)
def test_reactor_calls_between_runs_raise_reactor_not_bound_saying_to_call_them_on_the_hub(
    what: str, call: Any
) -> None:
    async def noop() -> None:
        pass

    run_twisted(noop)
    with socket.socket() as sock, pytest.raises(bt.NotAttachedError) as caught:
        call(reactor(), sock)
    assert isinstance(caught.value, bridges.BridgeError)
    assert isinstance(caught.value, error.ReactorNotRunning)
    assert f"reactor.{what} was called while no bridges hub runs" in str(caught.value)
    assert "call it from code running on the hub" in str(caught.value)
    assert reactor().getReaders() == []
    assert reactor().getWriters() == []

    async def listens() -> int:
        return reactor().listenTCP(0, _server_factory(), interface="127.0.0.1").getHost().port

    assert run_twisted(listens) > 0


def test_connect_tcp_between_runs_connects_in_the_next_run_like_before_reactor_run() -> None:
    from twisted.internet import defer, protocol

    async def noop() -> None:
        pass

    run_twisted(noop)
    connected: defer.Deferred[str] = defer.Deferred()

    class Connected(protocol.Protocol):
        def connectionMade(self) -> None:
            connected.callback("connected in the next run")
            self.transport.loseConnection()

    with socket.create_server(("127.0.0.1", 0)) as server:
        factory = protocol.ClientFactory.forProtocol(Connected)
        reactor().connectTCP("127.0.0.1", server.getsockname()[1], factory)

        async def main() -> str:
            return await bridges.awaitable(connected)

        assert run_twisted(main) == "connected in the next run"


def _server_factory() -> Any:
    from twisted.internet import protocol

    return protocol.ServerFactory()


def _process_protocol() -> Any:
    from twisted.internet import protocol

    return protocol.ProcessProtocol()


def test_a_hub_whose_loop_closed_before_twisted_detached_does_not_block_later_runs() -> None:
    from twisted.logger import globalLogPublisher

    observers = list(globalLogPublisher._observers)
    loop = asyncio.new_event_loop()
    abandoned = bridges.Hub(frameworks=["twisted"])
    loop.run_until_complete(abandoned.__aenter__())
    loop.close()  # as a second Ctrl-C while stopping can leave it
    with pytest.raises(bt.NotAttachedError):
        reactor().callFromThread(print, "never")

    async def main() -> bool:
        return reactor().running

    assert run_twisted(main) is True
    assert list(globalLogPublisher._observers) == observers


def _abandon_a_hub_while_its_shutdown_triggers_wait() -> list[asyncio.Task[Any]]:
    """A hub whose loop closed while its stop sequence waited for a ``before`` trigger."""
    from twisted.internet import defer

    loop = asyncio.new_event_loop()
    abandoned = bridges.Hub(frameworks=["twisted"])
    loop.run_until_complete(abandoned.__aenter__())
    never: defer.Deferred[None] = defer.Deferred()
    reactor().addSystemEventTrigger("before", "shutdown", lambda: never)
    reactor().addSystemEventTrigger("after", "shutdown", print, "after the abandoned stop")
    stopping = loop.create_task(abandoned.__aexit__(None, None, None))
    loop.run_until_complete(asyncio.sleep(0.01))  # the stop now waits for `never`
    loop.close()
    return [stopping]


def test_a_stop_abandoned_by_a_closed_loop_neither_blocks_nor_disturbs_the_next_run() -> None:
    stopping = _abandon_a_hub_while_its_shutdown_triggers_wait()

    async def main() -> str:
        installed = reactor()
        del stopping[:]
        gc.collect()  # closes the abandoned stop's coroutine: its `finally` runs now
        fired = asyncio.get_running_loop().create_future()
        installed.callLater(0, fired.set_result, "the reactor still runs on this hub")
        assert installed.hub is bridges.current_hub()
        return await fired

    reports = Reports()

    async def checked() -> str:
        reports.install()
        return await main()

    assert run_twisted(checked) == "the reactor still runs on this hub"
    assert reports.exceptions == []


def test_a_reactor_running_on_one_hub_is_refused_by_a_hub_in_another_thread() -> None:
    errors: list[BaseException] = []

    async def other_thread_main() -> None:
        pass

    async def main() -> None:
        def other() -> None:
            try:
                bridges.run(other_thread_main, frameworks=["twisted"])
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        await asyncio.get_running_loop().run_in_executor(None, other)

    run_twisted(main)
    assert [type(exc) for exc in errors] == [bt.ReactorInUseError]


# -- errors reach the hub's error sink --------------------------------------------


def test_unhandled_error_in_deferred_is_reported_once_and_the_hub_keeps_running() -> None:
    reports = Reports()
    boom = ValueError("nobody handled me")

    async def main() -> str:
        from twisted.internet.defer import fail

        reports.install()
        fail(boom)
        gc.collect()
        await asyncio.sleep(0)
        return "still running"

    assert run_twisted(main) == "still running"
    assert reports.exceptions == [boom]
    assert reports.messages == ["Twisted: Unhandled error in Deferred"]


def test_an_exception_in_a_timed_call_is_reported_and_later_calls_still_run() -> None:
    reports = Reports()

    async def main() -> str:
        reports.install()
        loop = asyncio.get_running_loop()
        later = loop.create_future()
        installed = reactor()
        installed.callLater(0, lambda: 1 / 0)
        installed.callLater(0.01, later.set_result, "later call ran")
        return await later

    assert run_twisted(main) == "later call ran"
    assert [type(exc) for exc in reports.exceptions] == [ZeroDivisionError]


def test_log_err_reaches_the_hub_once_even_when_logged_twice() -> None:
    reports = Reports()

    async def main() -> None:
        from twisted.python import log
        from twisted.python.failure import Failure

        reports.install()
        failure = Failure(KeyError("logged"))
        log.err(failure, "first")
        log.err(failure, "second")

    run_twisted(main)
    assert [type(exc) for exc in reports.exceptions] == [KeyError]


def test_the_log_observer_is_removed_when_the_hub_stops() -> None:
    from twisted.logger import globalLogPublisher

    async def main() -> None:
        pass

    before = list(globalLogPublisher._observers)
    run_twisted(main)
    assert list(globalLogPublisher._observers) == before


# -- child processes --------------------------------------------------------------


@pytest.mark.parametrize("loop_factory", LOOPS)
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("print('child')", (b"child\n", 0)),
        # Closes its pipes first and exits later: only reaping can end it.
        (
            "import os, time; print('bye', flush=True); os.close(1); os.close(2); "
            "time.sleep(0.2); os._exit(3)",
            (b"bye\n", 3),
        ),
    ],
    ids=["exits-with-its-pipes", "exits-after-closing-its-pipes"],
)
def test_spawn_process_ends_because_the_reactor_reaps_its_children(
    loop_factory: str, code: str, expected: tuple[bytes, int]
) -> None:
    async def main() -> tuple[bytes, int]:
        from twisted.internet import protocol

        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        class Collect(protocol.ProcessProtocol):
            out = b""

            def outReceived(self, data: bytes) -> None:
                self.out += data

            def processEnded(self, reason: Any) -> None:
                ended.set_result((self.out, reason.value.exitCode))

        reactor().spawnProcess(Collect(), sys.executable, [sys.executable, "-c", code], env=None)
        return await ended

    assert run_twisted(main, loop_factory=loop_factory) == expected
