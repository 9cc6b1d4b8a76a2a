"""anyretry's tests, one per flavor of caller, each on a bridges hub (``@pytest.mark.bridges``)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import anyretry
import pytest


def flaky(failures: int, result: Any, make: Callable[[Any], Any]) -> Callable[[], Any]:
    """A call that fails ``failures`` times, then succeeds; ``make`` wraps its outcome natively."""
    calls = []

    def call() -> Any:
        calls.append(1)
        if len(calls) <= failures:
            return make(ConnectionError(f"attempt {len(calls)} failed"))
        return make(result)

    return call


@pytest.mark.bridges(frameworks=None)
async def test_retries_an_asyncio_coroutine_until_it_succeeds() -> None:
    async def outcome(value: Any) -> Any:
        await asyncio.sleep(0)
        if isinstance(value, Exception):
            raise value
        return value

    call = flaky(2, "asyncio", outcome)
    assert await anyretry.retry(call, attempts=3) == "asyncio"


@pytest.mark.bridges(frameworks=["twisted"])
async def test_retries_a_call_that_returns_a_twisted_deferred() -> None:
    from twisted.internet import defer

    call = flaky(
        2, "twisted", lambda v: defer.fail(v) if isinstance(v, Exception) else defer.succeed(v)
    )
    assert await anyretry.retry(call, attempts=3) == "twisted"


@pytest.mark.bridges(frameworks=["twisted"])
def test_twisted_code_gets_a_deferred_with_bt_deferred() -> Any:
    from twisted.internet import defer, reactor, task

    from bridges import twisted as bt

    @defer.inlineCallbacks
    def legacy_test() -> Any:
        call = flaky(1, "later", lambda v: task.deferLater(reactor, 0, _raise_or_return, v))
        result = yield bt.deferred(anyretry.retry(call, attempts=2))
        assert result == "later"

    return legacy_test()


@pytest.mark.bridges(frameworks=["tornado"])
async def test_retries_a_tornado_gen_coroutine() -> None:
    from tornado import gen

    @gen.coroutine
    def outcome(value: Any) -> Any:
        yield gen.moment
        return _raise_or_return(value)

    call = flaky(2, "tornado", outcome)
    assert await anyretry.retry(call, attempts=3) == "tornado"


@pytest.mark.bridges(frameworks=["gevent"])
def test_gevent_code_waits_for_a_retried_async_result_with_bg_wait() -> None:
    import gevent
    from gevent.event import AsyncResult

    from bridges import gevent as bg

    def outcome(value: Any) -> AsyncResult:
        # An AsyncResult a worker greenlet fills in, as gevent code hands out results.
        result = AsyncResult()
        settle = result.set_exception if isinstance(value, Exception) else result.set
        gevent.spawn(settle, value)
        return result

    call = flaky(2, "gevent", outcome)
    # A plain test function runs in a greenlet when gevent is attached: it may block.
    assert bg.wait(anyretry.retry(call, attempts=3)) == "gevent"


@pytest.mark.bridges(frameworks=None)
async def test_the_last_attempts_exception_is_raised_as_it_is() -> None:
    raised: list[Exception] = []

    async def always_fails() -> None:
        raised.append(ConnectionError(f"attempt {len(raised) + 1}"))
        raise raised[-1]

    with pytest.raises(ConnectionError) as caught:
        await anyretry.retry(always_fails, attempts=3)
    assert caught.value is raised[-1]
    assert len(raised) == 3


def _raise_or_return(value: Any) -> Any:
    if isinstance(value, Exception):
        raise value
    return value
