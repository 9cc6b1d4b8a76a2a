"""``bridges.Hub``: lifecycle, framework selection, fd and signal ownership, the error sink."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import sys
import threading
import weakref
from typing import Any

import pytest
from _reports import Reports

import bridges
from bridges import _adapter

# -- entering and leaving --------------------------------------------------


def test_hub_works_as_async_with_inside_a_running_loop() -> None:
    async def main() -> tuple[bool, bool]:
        async with bridges.Hub(frameworks=None) as hub:
            inside = bridges.current_hub() is hub and hub.running
        return inside, hub.running

    assert asyncio.run(main()) == (True, False)


def test_a_stopped_hub_does_not_keep_the_task_that_entered_it_alive() -> None:
    # A stopped hub may wait in reference cycles for a full collection; the
    # finished task that entered it must not wait with it, or every later
    # asyncio.all_tasks() walks it (the pytest plugin calls it for each test).
    async def enter(hub: bridges.Hub) -> None:
        async with hub:
            pass

    async def main() -> tuple[bridges.Hub, weakref.ref[asyncio.Task[None]]]:
        hub = bridges.Hub(frameworks=None)
        host = asyncio.get_running_loop().create_task(enter(hub))
        await host
        return hub, weakref.ref(host)

    gc.disable()
    try:
        hub, host = asyncio.run(main())
        assert not hub.running
        assert host() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("accounting", [False, True, "exact"])
def test_a_stopped_hub_is_freed_without_waiting_for_the_garbage_collector(
    accounting: object,
) -> None:
    # Its accounting stays readable after the run; it must not keep the hub
    # (and its closed loop) alive in a reference cycle.
    async def main() -> weakref.ref[bridges.Hub]:
        hub = bridges.Hub(frameworks=None, accounting=accounting)
        async with hub:
            pass
        return weakref.ref(hub)

    gc.disable()
    try:
        assert asyncio.run(main())() is None
    finally:
        gc.enable()


def test_current_hub_outside_a_hub_says_where_to_call_it_from() -> None:
    with pytest.raises(bridges.HubNotRunningError, match=r"inside bridges\.run"):
        bridges.current_hub()
    with pytest.raises(RuntimeError):  # it is also a RuntimeError, as the contract says
        bridges.current_hub()


def test_current_hub_from_another_thread_is_an_error() -> None:
    errors: list[BaseException] = []

    async def main() -> None:
        def probe() -> None:
            try:
                bridges.current_hub()
            except bridges.HubNotRunningError as exc:
                errors.append(exc)

        await asyncio.get_running_loop().run_in_executor(None, probe)

    bridges.run(main, frameworks=None)
    assert len(errors) == 1
    assert "call_soon_threadsafe" in str(errors[0])


def test_a_second_hub_on_the_same_loop_is_refused() -> None:
    async def main() -> None:
        async with bridges.Hub(frameworks=None):
            with pytest.raises(bridges.HubStateError, match=r"bridges\.current_hub\(\)"):
                async with bridges.Hub(frameworks=None):
                    pass

    asyncio.run(main())


def test_a_hub_starts_only_once() -> None:
    async def main() -> None:
        hub = bridges.Hub(frameworks=None)
        async with hub:
            pass
        with pytest.raises(bridges.HubStateError, match=r"Make a new bridges\.Hub\(\)"):
            async with hub:
                pass

    asyncio.run(main())


def test_stop_requested_inside_async_with_swallows_only_its_own_cancellation() -> None:
    async def main() -> str:
        async with bridges.Hub(frameworks=None) as hub:
            hub.request_stop("test")
            await asyncio.sleep(3600)
        return "after the hub"

    assert asyncio.run(main()) == "after the hub"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="cancel counting arrived in 3.11")
def test_an_outside_cancellation_during_a_stop_request_still_propagates() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        async with bridges.Hub(frameworks=None) as hub:
            hub.request_stop("test")
            task.cancel()
            await asyncio.sleep(3600)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())


# -- choosing frameworks ---------------------------------------------------


def test_an_unknown_framework_name_lists_the_known_ones() -> None:
    with pytest.raises(bridges.UnknownFrameworkError, match="'asyncore', 'gevent'"):
        bridges.Hub(frameworks=["twistd"])


@pytest.mark.parametrize("entry", _adapter.BUILTIN, ids=lambda entry: entry.name)
def test_a_framework_that_is_not_installed_names_the_extra_to_install(
    entry: _adapter.AdapterEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert entry.requires is not None
    monkeypatch.setitem(sys.modules, entry.requires, None)  # the way Python blocks an import
    with pytest.raises(bridges.FrameworkNotInstalledError) as caught:
        bridges.Hub(frameworks=[entry.name])
    assert f"pip install 'tulip-bridges[{entry.name}]'" in str(caught.value)
    assert isinstance(caught.value, ImportError)


@pytest.mark.parametrize("entry", _adapter.BUILTIN, ids=lambda entry: entry.name)
def test_a_built_in_adapter_class_describes_itself_as_its_registry_entry_does(
    entry: _adapter.AdapterEntry,
) -> None:
    if not entry.available():
        pytest.skip(f"{entry.name} is not installed")
    cls = _adapter.load(entry)
    assert (cls.name, cls.requires, cls.install_hint) == (
        entry.name,
        entry.requires,
        entry.install_hint,
    )


def test_auto_leaves_out_frameworks_that_are_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for entry in _adapter.BUILTIN:
        assert entry.requires is not None
        monkeypatch.setitem(sys.modules, entry.requires, None)
    assert [cls for cls in _adapter.resolve("auto") if cls.name in _builtin_names()] == []


def _builtin_names() -> set[str]:
    return {entry.name for entry in _adapter.BUILTIN}


def test_auto_picks_every_installed_framework_in_attach_order() -> None:
    wanted = [entry.name for entry in _adapter.BUILTIN if entry.available()]
    chosen = [cls.name for cls in _adapter.resolve("auto") if cls.name in _builtin_names()]
    assert chosen == wanted


def test_frameworks_are_attached_in_the_fixed_order_whatever_order_they_are_named_in() -> None:
    names = [entry.name for entry in _adapter.BUILTIN if entry.available()]
    assert [cls.name for cls in _adapter.resolve(list(reversed(names)))] == names


# -- file descriptors ------------------------------------------------------


def test_a_second_owner_of_an_fd_reader_gets_an_error_naming_both_owners() -> None:
    async def main() -> str:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        with left, right:
            hub.add_reader(left, lambda: None, owner="twisted")
            with pytest.raises(bridges.FdConflictError) as caught:
                hub.add_reader(left.fileno(), lambda: None, owner="asyncore")
            hub.remove_reader(left, owner="twisted")
        return str(caught.value)

    message = bridges.run(main, frameworks=None)
    assert "'twisted'" in message
    assert "'asyncore'" in message
    assert "bridges.awaitable()" in message


def test_the_first_owner_keeps_its_reader_after_a_refused_second_owner() -> None:
    async def main() -> bytes:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        with left, right:
            hub.add_reader(left, lambda: got.set_result(left.recv(10)), owner="first")
            with pytest.raises(bridges.FdConflictError):
                hub.add_reader(left, lambda: None, owner="second")
            right.send(b"ping")
            data = await asyncio.wait_for(got, 5)
            hub.remove_reader(left, owner="first")
        return data

    assert bridges.run(main, frameworks=None) == b"ping"


def test_readers_and_writers_are_owned_separately() -> None:
    async def main() -> dict[str, dict[int, str]]:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        with left, right:
            hub.add_reader(left, lambda: None, owner="reader-owner")
            hub.add_writer(left, lambda: None, owner="writer-owner")
            owners = hub.fd_owners()
            hub.remove_writer(left, owner="writer-owner")
            hub.remove_reader(left, owner="reader-owner")
        return owners

    owners = bridges.run(main, frameworks=None)
    assert list(owners["readers"].values()) == ["reader-owner"]
    assert list(owners["writers"].values()) == ["writer-owner"]


def test_a_claim_refused_for_the_writer_leaves_the_reader_unclaimed() -> None:
    # claim() owns an fd without registering it with the loop (asyncore's
    # epoll set does the watching); refused, it takes nothing.
    async def main() -> tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        with left, right:
            hub.add_writer(left, lambda: None, owner="twisted")
            with pytest.raises(bridges.FdConflictError, match="'twisted'"):
                hub.claim(left, owner="asyncore", reader=True, writer=True)
            refused = hub.fd_owners()
            hub.remove_writer(left, owner="twisted")
            hub.claim(left, owner="asyncore", reader=True, writer=True)
            claimed = hub.fd_owners()
            hub.unclaim(left, owner="asyncore", reader=True, writer=True)
        return refused, claimed

    refused, claimed = bridges.run(main, frameworks=None)
    assert list(refused["readers"].values()) == []
    assert list(claimed["readers"].values()) == ["asyncore"]
    assert list(claimed["writers"].values()) == ["asyncore"]


def test_an_owner_may_replace_its_own_reader() -> None:
    async def main() -> str:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        with left, right:
            hub.add_reader(left, lambda: got.set_result("old"), owner="me")
            hub.add_reader(left, lambda: got.set_result("new"), owner="me")
            right.send(b"x")
            which = await asyncio.wait_for(got, 5)
            hub.remove_reader(left, owner="me")
        return which

    assert bridges.run(main, frameworks=None) == "new"


def test_removing_another_owners_reader_is_refused() -> None:
    async def main() -> None:
        hub = bridges.current_hub()
        left, right = socket.socketpair()
        with left, right:
            hub.add_reader(left, lambda: None, owner="twisted")
            with pytest.raises(bridges.FdConflictError, match="belongs to 'twisted'"):
                hub.remove_reader(left, owner="gevent")
            assert hub.remove_reader(left, owner="twisted") is True
            assert hub.remove_reader(left, owner="twisted") is False

    bridges.run(main, frameworks=None)


def test_registrations_left_at_stop_are_removed_from_the_loop() -> None:
    left, right = socket.socketpair()

    async def main() -> asyncio.AbstractEventLoop:
        bridges.current_hub().add_reader(left, lambda: None, owner="forgetful")
        return asyncio.get_running_loop()

    with left, right:
        loop = bridges.run(main, frameworks=None, loop_factory=asyncio.SelectorEventLoop)
        # A closed selector loop has dropped its selector; the hub removed the
        # reader before that, so a fresh loop can own the fd.
        assert loop.is_closed()

        async def reuse() -> None:
            bridges.current_hub().add_reader(left, lambda: None, owner="next run")
            bridges.current_hub().remove_reader(left, owner="next run")

        bridges.run(reuse, frameworks=None)


# -- signals ---------------------------------------------------------------


def test_a_second_owner_of_a_signal_handler_gets_an_error_naming_both() -> None:
    async def main() -> None:
        hub = bridges.current_hub()
        hub.add_signal_handler(signal.SIGUSR1, lambda: None, owner="twisted")
        with pytest.raises(bridges.SignalConflictError, match=r"'twisted'.*'gevent'"):
            hub.add_signal_handler(signal.SIGUSR1, lambda: None, owner="gevent")
        hub.remove_signal_handler(signal.SIGUSR1, owner="twisted")

    bridges.run(main, frameworks=None)


def test_run_owns_sigint_and_sigterm_so_adapters_cannot_silently_replace_them() -> None:
    async def main() -> None:
        with pytest.raises(bridges.SignalConflictError, match=r"'bridges\.run'"):
            bridges.current_hub().add_signal_handler(signal.SIGTERM, lambda: None, owner="x")

    bridges.run(main, frameworks=None)


def test_a_signal_handler_registered_through_the_hub_runs() -> None:
    async def main() -> int:
        hub = bridges.current_hub()
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        hub.add_signal_handler(signal.SIGUSR1, got.set_result, 1, owner="test")
        signal.raise_signal(signal.SIGUSR1)
        return await asyncio.wait_for(got, 5)

    assert bridges.run(main, frameworks=None) == 1


# -- the error sink --------------------------------------------------------


def test_an_exception_reported_twice_reaches_the_exception_handler_once() -> None:
    reports = Reports()

    async def main() -> None:
        reports.install()
        hub = bridges.current_hub()
        error = ValueError("nobody awaited me")
        hub.report(error, "first path")
        hub.report(error, "second path")

    bridges.run(main, frameworks=None)
    assert [c["message"] for c in reports.contexts] == ["first path"]


def test_a_report_from_another_thread_is_delivered_on_the_hub_thread() -> None:
    reports = Reports()
    threads: list[threading.Thread] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(
            lambda _, context: (
                reports.contexts.append(context),
                threads.append(threading.current_thread()),
            )
        )
        hub = bridges.current_hub()
        await loop.run_in_executor(None, hub.report, KeyError("from a thread"), "thread report")
        await asyncio.sleep(0.01)

    bridges.run(main, frameworks=None)
    assert [type(e) for e in reports.exceptions] == [KeyError]
    assert threads == [threading.main_thread()]


def test_the_hub_keeps_running_after_an_error_is_reported() -> None:
    reports = Reports()

    async def main() -> str:
        reports.install()
        bridges.current_hub().report(RuntimeError("boom"), "a callback failed")
        await asyncio.sleep(0.01)
        return "still running"

    assert bridges.run(main, frameworks=None) == "still running"
    assert len(reports.exceptions) == 1


# -- legacy tasks and the stop sequence ------------------------------------


def test_tasks_spawned_for_legacy_code_are_cancelled_when_the_hub_stops() -> None:
    spawned: list[asyncio.Task[None]] = []

    async def main() -> None:
        spawned.append(bridges.current_hub().spawn(asyncio.sleep(3600)))

    bridges.run(main, frameworks=None)
    assert spawned[0].cancelled()


def test_a_spawned_task_sees_the_callers_context_variables() -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")

    async def read() -> str:
        return request_id.get()

    async def main() -> str:
        request_id.set("r-42")
        return await bridges.current_hub().spawn(read())

    assert bridges.run(main, frameworks=None) == "r-42"


def test_a_stuck_stop_stage_is_reported_with_what_it_waits_for_and_not_hung_on() -> None:
    reports = Reports()

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # ignores cancellation, as badly written legacy code does

    async def main() -> None:
        reports.install()
        bridges.current_hub().spawn(stubborn(), name="stubborn-task")

    bridges.run(main, frameworks=None, stop_timeout=0.2)
    stuck = [e for e in reports.exceptions if isinstance(e, bridges.StopTimeoutError)]
    assert len(stuck) == 1
    message = str(stuck[0])
    assert "'legacy tasks'" in message
    assert "stubborn" in message
    assert "stop_timeout" in message


def test_an_exception_raised_by_a_legacy_task_while_cancelled_is_reported() -> None:
    reports = Reports()

    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise OSError("cleanup failed") from None

    async def main() -> None:
        reports.install()
        bridges.current_hub().spawn(fails_on_cancel())

    bridges.run(main, frameworks=None)
    assert [type(e) for e in reports.exceptions] == [OSError]


def test_a_refused_reader_registration_leaves_the_fd_unclaimed(tmp_path: Any) -> None:
    async def main() -> dict[str, dict[int, str]]:
        hub = bridges.current_hub()
        with open(tmp_path / "regular-file", "w") as regular:  # noqa: ASYNC230 - a tiny local file
            # epoll refuses regular files (EPERM); the claim must not outlive the refusal
            with pytest.raises(PermissionError):
                hub.add_reader(regular, lambda: None, owner="twisted")
            return hub.fd_owners()

    assert bridges.run(main, frameworks=None, loop_factory=asyncio.SelectorEventLoop) == {
        "readers": {},
        "writers": {},
    }


def test_an_exception_main_raises_right_after_a_stop_request_is_not_lost() -> None:
    async def main() -> None:
        bridges.current_hub().request_stop("reactor.stop()")
        raise LookupError("raised after the stop request")

    with pytest.raises(LookupError, match="after the stop request"):
        bridges.run(main, frameworks=None)


def test_a_result_main_returns_right_after_a_stop_request_is_kept() -> None:
    async def main() -> str:
        bridges.current_hub().request_stop("reactor.stop()")
        return "finished anyway"

    assert bridges.run(main, frameworks=None) == "finished anyway"


def test_a_cancellation_that_arrives_while_the_hub_stops_is_passed_on_unchanged() -> None:
    seen: list[asyncio.CancelledError] = []

    async def slow_to_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # keeps the stop sequence busy for a moment
            raise

    async def inner() -> None:
        try:
            async with bridges.Hub(frameworks=None) as hub:
                hub.spawn(slow_to_cancel())
        except asyncio.CancelledError as cancelled:
            seen.append(cancelled)
            raise

    async def main() -> None:
        task = asyncio.ensure_future(inner())
        await asyncio.sleep(0.01)  # inner is now in its hub's stop sequence
        task.cancel("from outside")
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(seen) == 1
    assert seen[0].args == ("from outside",)  # the caller's own cancellation, not a new one


def test_an_exception_object_reused_across_runs_is_reported_by_each_hub() -> None:
    # Twisted hands out one process-wide instance for "connection lost"; an
    # error the first hub reported must still reach the second hub's handler.
    shared = ConnectionError("one instance for the whole process")
    reports = [Reports(), Reports()]

    async def main(index: int) -> None:
        reports[index].install()
        bridges.current_hub().report(shared, f"hub {index}")
        bridges.current_hub().report(shared, f"hub {index} again")

    bridges.run(main, 0, frameworks=None)
    bridges.run(main, 1, frameworks=None)
    assert [r.messages for r in reports] == [["hub 0"], ["hub 1"]]


def test_a_task_spawned_while_the_legacy_tasks_stop_is_cancelled_too() -> None:
    spawned: list[asyncio.Task[None]] = []

    async def parent() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            spawned.append(bridges.current_hub().spawn(asyncio.sleep(3600)))

    async def main() -> bool:
        async with bridges.Hub(frameworks=None) as hub:
            hub.spawn(parent())
        await asyncio.sleep(0)
        return spawned[0].cancelled()

    assert asyncio.run(main()) is True


def test_every_fd_an_adapter_registers_is_owned_under_the_adapters_name() -> None:
    async def main() -> tuple[set[str], tuple[str, ...]]:
        hub = bridges.current_hub()
        owners = hub.fd_owners()
        return {*owners["readers"].values(), *owners["writers"].values()}, hub.frameworks

    owners, frameworks = bridges.run(main)
    assert owners  # Twisted's waker, gevent's and asyncore's epoll sets
    assert owners <= set(frameworks)
