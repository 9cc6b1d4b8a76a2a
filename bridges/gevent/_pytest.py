"""Plain test functions run inside a greenlet when gevent is attached.

A greenlet gives the test something to block: ``gevent.sleep``, gevent
sockets and ``bg.wait(aw)`` suspend only the test's greenlet while the loop
(and every other framework) keeps running.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from typing import Any, Callable

import gevent.hub
import greenlet
from gevent.greenlet import Greenlet

from .._convert import awaitable
from .._introspect import frame_place
from .._pytest.runner import outcome_of, settle

__all__ = ["GreenletWatch", "greenlet_places", "in_greenlet"]


async def in_greenlet(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run ``func(**kwargs)`` in a new greenlet and await its outcome (then what it returned)."""
    glet = Greenlet(outcome_of, func, kwargs)
    # the test sees the contextvars its fixtures set, as an async test does
    glet.gr_context = contextvars.copy_context()
    glet.start()
    task = asyncio.current_task()
    if task is not None:
        # so that a timeout can say where the greenlet waits
        _greenlets[task] = glet
    return await settle(await awaitable(glet))


_greenlets: weakref.WeakKeyDictionary[asyncio.Task[Any], Any] = weakref.WeakKeyDictionary()


def greenlet_places(task: asyncio.Task[Any]) -> list[str] | None:
    """Where the greenlet that ``task`` waits for is suspended, outermost first."""
    glet = _greenlets.get(task)
    if glet is None or glet.gr_frame is None:
        return None
    places = []
    frame = glet.gr_frame
    while frame is not None and frame.f_code is not outcome_of.__code__:
        places.append(frame_place(frame))
        frame = frame.f_back
    return places[::-1]


class GreenletWatch:
    """Remembers every greenlet that runs while a test does, through ``greenlet.settrace``.

    gevent keeps no registry of its greenlets, and searching the heap for
    them costs tens of milliseconds per test in a big process.  A greenlet
    starts by being switched into, so the trace function sees each one; the
    previous trace function (a coverage tool's) is called too and restored.
    """

    def __init__(self) -> None:
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self._previous = greenlet.settrace(self)

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            self._seen.add(args[1])
        if self._previous is not None:
            self._previous(event, args)

    def live(self) -> list[Any]:
        current = greenlet.getcurrent()
        return [
            glet
            for glet in list(self._seen)
            # gevent's own hub greenlet is never a leak, nor a thread's main
            # greenlet (the one without a parent), which live() may be called
            # outside of when a portal-task checks for leaks
            if glet
            and glet is not current
            and glet.parent is not None
            and not isinstance(glet, gevent.hub.Hub)
        ]

    def close(self) -> None:
        greenlet.settrace(self._previous)
