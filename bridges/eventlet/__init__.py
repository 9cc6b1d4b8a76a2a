"""eventlet on the hub: greenthreads and asyncio tasks in one thread, on one loop.

asyncio is the master.  At attach, the hub makes this thread's eventlet hub
a :class:`LoopHub`, an eventlet hub whose timers are the asyncio loop's own
and whose fds sit in a private epoll that the loop watches; when something
is due, asyncio switches into eventlet's hub greenlet, which runs the
greenthreads that are due and switches back.  Green sockets,
``eventlet.wsgi``, ``GreenPool``, ``Queue``, ``Timeout`` and ``tpool`` work
unchanged, on the stdlib loop and uvloop, with or without
``eventlet.monkey_patch()``.

Public API::

    from bridges import eventlet as be
    gt = be.spawn(aw)                      # an awaitable as a GreenThread
    result = be.wait(aw)                   # inside a greenthread: block only it
    await bridges.awaitable(greenthread)   # also eventlet.event.Event and GreenPool

Portals: an eventlet blocking call inside an asyncio task on the hub
suspends only that task, and ``be.wait(aw)`` from sync code that such a task
runs awaits ``aw`` inline in the task.  Where there is no task to suspend (a
loop callback, ``portals=False``) the call raises :class:`HubOwnsLoopError`
at once instead of stalling every task.

The package imports eventlet only when one of these names is first used, so
that the hub can list and load the adapter without importing the framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import (
        EventletAdapter,
        HubOwnsLoopError,
        LoopHub,
        MixedPatchingError,
        get_hub,
        spawn,
        wait,
    )

__all__ = [
    "EventletAdapter",
    "HubOwnsLoopError",
    "LoopHub",
    "MixedPatchingError",
    "get_hub",
    "spawn",
    "wait",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}._api"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
