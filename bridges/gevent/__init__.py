"""gevent on the hub: greenlets and asyncio tasks in one thread, on one poller.

asyncio is the master.  At attach, the hub installs a fresh gevent hub for
this thread whose loop (:class:`bridges.gevent.AsyncioLoop`) maps every
gevent watcher onto the asyncio loop; when one fires, asyncio switches into
gevent's hub greenlet, which runs what is due and switches back.  So
greenlets, gevent servers and sockets, and asyncio tasks share one poller,
and uvloop works too.

Public API::

    from bridges import gevent as bg
    g = bg.spawn(aw)                       # an awaitable as a Greenlet
    result = bg.wait(aw)                   # inside a greenlet: block only it
    await bridges.awaitable(greenlet)      # also AsyncResult and Event

Portals: with gevent attached, each asyncio task on the hub runs its
coroutine in a greenlet of its own (:mod:`bridges._portal`), so a gevent
blocking call inside a task (``gevent.sleep``, ``greenlet.join()``, patched
sockets...) suspends only that task, and ``bg.wait(aw)`` there awaits
inline.  A loop callback has no task to suspend: a blocking call there (or
anywhere with ``portals=False``) raises :class:`HubOwnsLoopError` at once
instead of stalling every task.

The package imports gevent only when one of these names is first used:
gevent itself imports ``bridges.gevent.AsyncioLoop`` while it is half
imported when ``GEVENT_LOOP=bridges.gevent.AsyncioLoop`` runs plain gevent
code on the loop class alone (docs/gevent.md, "standalone mode").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._deprecation import renamed_getattr

if TYPE_CHECKING:
    from ._api import (
        GeventHubBusyError,
        HubOwnsLoopError,
        NotAttachedError,
        get_hub,
        spawn,
        wait,
    )
    from ._backends import UnsupportedBackendError
    from ._executor import RealThreadExecutor
    from ._loop import AsyncioLoop, ForkNotSupportedError

__all__ = [
    "AsyncioLoop",
    "ForkNotSupportedError",
    "GeventHubBusyError",
    "HubOwnsLoopError",
    "NotAttachedError",
    "RealThreadExecutor",
    "UnsupportedBackendError",
    "get_hub",
    "spawn",
    "wait",
]

_HOME = {
    "AsyncioLoop": "_loop",
    "ForkNotSupportedError": "_loop",
    "RealThreadExecutor": "_executor",
    "UnsupportedBackendError": "_backends",
}
"""Names that live outside ``_api``: importing these must not import gevent."""


def _load(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOME.get(name, '_api')}")
    try:
        value = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    if name in __all__:
        globals()[name] = value
    return value


__getattr__ = renamed_getattr(
    __name__, {"BlockingCallError": "HubOwnsLoopError", "gevent_hub": "get_hub"}, _load, _load
)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
