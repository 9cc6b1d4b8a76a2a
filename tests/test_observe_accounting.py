"""Accounting per framework: counts, loop time and the slowest dispatches in ``hub.stats()``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest
from _asyncore_helpers import EchoServer
from test_observe_detector import _send
from tornado import web
from twisted.internet import protocol

import bridges
import bridges.metrics
from bridges._accounting import EVERY, EXACT, Accounting, qualified_name


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class SlowEcho(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        time.sleep(0.03)
        self.transport.write(data)


class HelloHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("hello")


def _burn_cpu(seconds: float) -> None:
    """Work the loop's thread for ``seconds`` of CPU (busy time is the thread's CPU time)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def legacy_view() -> str:
    time.sleep(0.02)
    return "ok"


@pytest.mark.parametrize("accounting", [True, "exact"])
def test_stats_count_and_time_each_frameworks_dispatches(accounting: Any) -> None:
    import gevent

    async def main() -> dict[str, Any]:
        from twisted.internet import reactor

        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
        server = EchoServer()
        app = web.Application([("/", HelloHandler)])
        http = app.listen(0, address="127.0.0.1")
        http_port = next(iter(http._sockets.values())).getsockname()[1]
        try:
            for _ in range(3):
                assert await _send(port.getHost().port, b"tw") == b"tw"
                assert await _send(server.port, b"ac") == b"ac"
                reply = await _send(http_port, b"GET / HTTP/1.0\r\n\r\n")
                assert reply.endswith(b"hello")
                assert await bridges.awaitable(gevent.spawn(legacy_view)) == "ok"
        finally:
            http.stop()
            server.close()
            await bridges.awaitable(port.stopListening())
        return bridges.current_hub().stats()

    stats = bridges.run(
        main, frameworks=["asyncore", "gevent", "tornado", "twisted"], accounting=accounting
    )
    frameworks = stats["frameworks"]
    assert set(frameworks) == {"asyncio", "asyncore", "gevent", "tornado", "twisted"}
    for name in ("asyncore", "twisted", "tornado"):
        assert frameworks[name]["count"] >= 3, (name, frameworks[name])
    assert frameworks["gevent"]["count"] >= 3
    assert frameworks["gevent"]["seconds"] >= 3 * 0.02
    assert 0 < stats["busy_seconds"] <= stats["wall_seconds"]
    if accounting == "exact":  # select is timed and counted: asyncio's handles have a count
        assert frameworks["asyncio"]["count"] > 0
        assert stats["loop_passes"] > 0
    else:
        assert frameworks["asyncio"]["count"] is None
        assert stats["loop_passes"] is None
    assert stats["stalls"] == 0
    assert stats["slow_callback"] is None


def test_the_slowest_dispatches_are_named_by_the_users_function() -> None:
    async def main() -> dict[str, Any]:
        from twisted.internet import reactor, task

        port = reactor.listenTCP(0, protocol.Factory.forProtocol(SlowEcho), interface="127.0.0.1")
        try:
            assert await _send(port.getHost().port, b"x") == b"x"
            await bridges.awaitable(task.deferLater(reactor, 0, legacy_view))
        finally:
            await bridges.awaitable(port.stopListening())
        return bridges.current_hub().stats()

    slowest = bridges.run(main, frameworks=["twisted"])["slowest"]
    names = [(entry["framework"], entry["function"]) for entry in slowest[:2]]
    assert ("twisted", f"{__name__}.SlowEcho.dataReceived") in names
    assert slowest[0]["seconds"] >= 0.02
    assert [entry["seconds"] for entry in slowest] == sorted(
        (entry["seconds"] for entry in slowest), reverse=True
    )


@pytest.mark.parametrize("accounting", [True, "exact"])
@pytest.mark.parametrize("loop_factory", ["asyncio", "uvloop"])
def test_asyncio_gets_the_busy_time_no_framework_claimed(
    loop_factory: str, accounting: Any
) -> None:
    async def main() -> dict[str, Any]:
        for _ in range(3):
            _burn_cpu(0.02)
            await asyncio.sleep(0)
        return bridges.current_hub().stats()

    stats = bridges.run(main, frameworks=None, loop_factory=loop_factory, accounting=accounting)
    asyncio_figures = stats["frameworks"]["asyncio"]
    assert asyncio_figures["seconds"] >= 0.05
    assert stats["busy_seconds"] is not None
    if loop_factory == "asyncio" and accounting == "exact":
        assert asyncio_figures["count"] >= 3
    else:  # busy time is the loop thread's CPU time (uvloop's passes are C): no count
        assert asyncio_figures["count"] is None


@contextlib.contextmanager
def _sharing_a_cpu_with_a_hog() -> Iterator[None]:
    """This thread and a busy process pinned to one CPU: the thread waits for it half the time."""
    cpu = min(os.sched_getaffinity(0))
    affinity = os.sched_getaffinity(0)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        yield
    finally:
        os.sched_setaffinity(0, affinity)
        hog.kill()
        hog.wait(10)


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="pins a CPU hog to the loop's CPU (Linux)"
)


@linux_only
def test_asyncio_keeps_its_share_when_other_processes_take_the_loops_cpu() -> None:
    # A timed dispatch's wall time holds the moments another process ran in
    # its place; the busy time must hold them too, or asyncio's share (the
    # busy time beyond the dispatches) drops to nothing on a loaded machine.
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        from twisted.internet import reactor, task

        first = bridges.current_hub().stats()
        for _ in range(10):  # half the work in Twisted's dispatches, half in asyncio's
            await bridges.awaitable(task.deferLater(reactor, 0, _burn_cpu, 0.01))
            _burn_cpu(0.01)
            await asyncio.sleep(0)
        return first, bridges.current_hub().stats()

    with _sharing_a_cpu_with_a_hog():
        first, last = bridges.run(main, frameworks=["twisted"])
    share = bridges.metrics.shares(first, last)
    assert 0.25 < share["asyncio"] < 0.75, share


@linux_only
def test_the_wait_for_a_cpu_counts_only_from_the_first_reading_of_the_figures() -> None:
    # Reading the scheduler's figures costs a file read, which a hub whose
    # figures nobody reads (one per test) does not pay: until the first
    # reading the busy time is the loop thread's CPU time alone, though the
    # thread waited for the hog about as long as it ran.
    async def main() -> tuple[float, float]:
        _burn_cpu(0.1)
        busy = bridges.current_hub().stats()["busy_seconds"]
        return busy, time.thread_time()

    with _sharing_a_cpu_with_a_hog():
        ran_before = time.thread_time()
        busy, ran_after = bridges.run(main, frameworks=["twisted"])
    assert 0.1 <= busy <= ran_after - ran_before, (busy, ran_after - ran_before)


def test_stats_are_empty_when_accounting_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGES_SLOW_CALLBACK", raising=False)
    monkeypatch.setenv("BRIDGES_ACCOUNTING", "0")

    async def main() -> Any:
        hub = bridges.current_hub()
        return hub.accounting, hub.stats()

    accounting, stats = bridges.run(main, frameworks=["twisted"])
    assert accounting is None
    assert stats["frameworks"] == {}
    assert stats["slowest"] == []


@pytest.mark.parametrize("accounting", [True, "exact"])
def test_the_loops_selector_is_wrapped_only_for_exact_accounting_and_given_back(
    accounting: Any,
) -> None:
    async def outer() -> Any:
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        async with bridges.Hub(frameworks=None, accounting=accounting):
            wrapped = "select" in vars(selector)
        return wrapped, "select" in vars(selector)

    assert asyncio.run(outer()) == (accounting == "exact", False)


def test_a_nested_dispatch_is_taken_out_of_the_outer_ones_time() -> None:
    acct = Accounting(lambda framework, what: qualified_name(what))
    gevent, twisted = acct.meter_for("gevent"), acct.meter_for("twisted")
    outer = gevent.begin(legacy_view)
    inner = twisted.begin(Echo.dataReceived)
    time.sleep(0.02)
    twisted.end(inner)
    gevent.end(outer)
    figures = acct.stats()["frameworks"]
    assert figures["twisted"]["seconds"] >= 0.02
    assert figures["gevent"]["seconds"] < 0.01
    assert acct.framework is None


def test_qualified_names_unwrap_methods_and_partials() -> None:
    import functools

    assert qualified_name(Echo().dataReceived) == f"{__name__}.Echo.dataReceived"
    assert qualified_name(functools.partial(legacy_view)) == f"{__name__}.legacy_view"
    assert qualified_name(Echo()) == f"{__name__}.Echo"


def _dispatch(meter: Any, seconds: float, what: Any = legacy_view) -> None:
    """One dispatch of ``what`` that burns ``seconds`` of CPU."""
    outer = meter.begin(what)
    _burn_cpu(seconds)
    meter.end(outer)


def test_past_the_first_dispatches_counts_stay_exact_and_time_is_estimated_from_a_sample() -> None:
    acct = Accounting(lambda framework, what: qualified_name(what))
    meter = acct.meter_for("twisted")
    dispatches = EXACT + 20 * EVERY
    # Sleeping, not burning CPU: a dispatch's length then barely depends on the
    # machine's load, and the estimate is compared with what they really took.
    took = 0.0
    for _ in range(dispatches):
        began = time.perf_counter()
        outer = meter.begin(legacy_view)
        time.sleep(0.002)
        meter.end(outer)
        took += time.perf_counter() - began
    figures = acct.stats()["frameworks"]["twisted"]
    assert figures["count"] == dispatches
    # One dispatch in EVERY stands for the others: the estimate is near what they took.
    assert 0.5 * took <= figures["seconds"] <= 1.5 * took, (figures, took)


def test_the_slowest_list_holds_timed_dispatches_only_unless_accounting_is_exact() -> None:
    untimed = EXACT + 1  # neither among the first EXACT nor a multiple of EVERY
    assert untimed % EVERY
    kept = {}
    for exact in (False, True):
        acct = Accounting(lambda framework, what: qualified_name(what), exact=exact)
        meter = acct.meter_for("twisted")
        for _ in range(1, untimed):
            _dispatch(meter, 0.0)
        _dispatch(meter, 0.02, what=_slow_view)
        # Named, not told apart by length: on a loaded machine a timed short
        # dispatch may be preempted for as long as the slow one takes.
        kept[exact] = [entry["function"] for entry in acct.stats()["slowest"]]
    slow = qualified_name(_slow_view)
    assert slow in kept[True]
    assert slow not in kept[False]


def _slow_view() -> None:
    """The one slow dispatch of a test, told apart by its name."""


def test_accounting_exact_times_every_dispatch_from_code_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BRIDGES_SLOW_CALLBACK", raising=False)

    async def exact() -> bool:
        acct = bridges.current_hub().accounting
        assert acct is not None
        return acct.exact > 10**9

    assert bridges.run(exact, frameworks=None, accounting="exact") is True
    assert bridges.run(exact, frameworks=None) is False
    monkeypatch.setenv("BRIDGES_ACCOUNTING", "exact")
    assert bridges.run(exact, frameworks=None) is True


@pytest.mark.parametrize(("where", "value"), [("code", "precise"), ("environment", "sometimes")])
def test_an_unknown_accounting_mode_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, where: str, value: str
) -> None:
    if where == "code":
        hub = lambda: bridges.Hub(frameworks=None, accounting=value)  # noqa: E731
        named = "accounting"
    else:
        monkeypatch.setenv("BRIDGES_ACCOUNTING", value)
        hub = lambda: bridges.Hub(frameworks=None)  # noqa: E731
        named = "BRIDGES_ACCOUNTING"
    with pytest.raises(bridges.UsageError, match=f"{named} must be on, off or exact"):
        hub()


def test_eventlet_entries_from_asyncio_are_counted_and_timed() -> None:
    pytest.importorskip("eventlet")
    import eventlet

    async def main() -> dict[str, Any]:
        for _ in range(3):
            assert await bridges.awaitable(eventlet.spawn(legacy_view)) == "ok"
        return bridges.current_hub().stats()

    stats = bridges.run(main, frameworks=["eventlet"])
    figures = stats["frameworks"]["eventlet"]
    assert figures["count"] >= 3
    assert figures["seconds"] >= 3 * 0.02


def test_a_greenlet_resumed_by_bg_wait_is_counted_and_timed_as_gevent() -> None:
    import gevent

    from bridges import gevent as bg

    def waits_then_works() -> None:
        for _ in range(3):
            bg.wait(asyncio.sleep(0))  # resumed straight from the task's done callback
            legacy_view()

    async def main() -> dict[str, Any]:
        await bridges.awaitable(gevent.spawn(waits_then_works))
        return bridges.current_hub().stats()

    stats = bridges.run(main, frameworks=["gevent"], accounting="exact")
    assert stats["frameworks"]["gevent"]["seconds"] >= 3 * 0.02
    resumed = [
        entry["seconds"]
        for entry in stats["slowest"]
        if entry["function"] == "gevent greenlet resumed from asyncio (bg.wait)"
    ]
    assert len(resumed) == 3
    assert min(resumed) >= 0.02
