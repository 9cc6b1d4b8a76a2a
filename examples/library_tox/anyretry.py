"""anyretry: retry a call, whichever framework its result comes from.

A library that is useful to Twisted, Tornado, gevent and asyncio users alike
has to accept each one's primitive.  ``bridges.awaitable`` does the accepting,
so the library is written once, in asyncio:

    result = await anyretry.retry(fetch, url, attempts=3)

where ``fetch(url)`` may return a coroutine, a Twisted Deferred, a Tornado
future, a greenlet, a ``concurrent.futures.Future``...  Twisted callers use
``bt.deferred(anyretry.retry(...))``; gevent callers ``bg.wait(anyretry.retry(...))``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import bridges

__all__ = ["retry"]


async def retry(
    call: Callable[..., Any],
    *args: Any,
    attempts: int = 3,
    delay: float = 0.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> Any:
    """Call ``call(*args)`` and await its outcome, up to ``attempts`` times.

    An exception in ``retry_on`` starts the next attempt after ``delay`` times
    the attempt number seconds; the last attempt's exception is raised as it
    is.  Cancellation is never retried.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return await bridges.awaitable(call(*args))
        except retry_on:
            if attempt == attempts:
                raise
        await asyncio.sleep(delay * attempt)
    raise AssertionError("unreachable")
