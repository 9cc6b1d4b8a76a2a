"""Plain test functions run inside a greenlet when gevent is attached.

A greenlet gives the test something to block: ``gevent.sleep``, gevent
sockets and ``bg.wait(aw)`` suspend only the test's greenlet while the loop
(and every other framework) keeps running.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Callable

from gevent.greenlet import Greenlet

from .._convert import awaitable
from .._pytest.runner import resolved, runs_in_greenlet

__all__ = ["in_greenlet"]


async def in_greenlet(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run ``func(**kwargs)`` in a new greenlet and await its outcome (then what it returned)."""
    glet = Greenlet(_outcome_of, func, kwargs)
    # the test sees the contextvars its fixtures set, as an async test does
    glet.gr_context = contextvars.copy_context()
    glet.start()
    task = asyncio.current_task()
    if task is not None:
        runs_in_greenlet(task, glet)
    succeeded, value = await awaitable(glet)
    if not succeeded:
        raise value
    return await resolved(value)


def _outcome_of(func: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    # The test's exception is carried to the awaiting side as a value: raised
    # inside the greenlet, gevent would also report it as an error nobody
    # handled, and the test would fail twice for one assertion.
    try:
        return True, func(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - re-raised, unchanged, by in_greenlet
        return False, exc
