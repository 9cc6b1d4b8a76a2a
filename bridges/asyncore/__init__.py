"""asyncore and asynchat dispatchers on the hub.

asyncore's own ``loop()`` asks every dispatcher ``readable()``/``writable()``
on each pass and hands all of their fds to ``select`` or ``poll``: its cost
per event grows with the number of connections, idle or not, and it blocks
the thread.  On the hub each dispatcher's fd is watched by the asyncio loop
instead, owned by asyncore in the hub's fd registry, and only the dispatcher
that had an event is asked again.  On asyncio's own loops (Linux) the fds sit
in one epoll set whose fd is the loop's reader, and one callback per pass
dispatches every ready dispatcher, as ``asyncore.poll`` does (a connection
alone active is watched by the loop itself until another is); on uvloop, and
where there is no epoll, each fd is registered with the loop.  The
dispatchers keep asyncore's rules:

* a read event calls ``handle_read_event()``, a write event
  ``handle_write_event()`` (which do accept/connect/read/write exactly as
  asyncore's do); an exceptional condition (urgent data, a socket error)
  calls ``handle_expt_event()``, which reads ``SO_ERROR`` and closes on an
  error; a hang-up calls ``handle_close()`` (as ``asyncore.poll2`` does);
* ``OSError`` with a disconnect errno goes to ``handle_close()``, every other
  exception to ``handle_error()`` (as ``asyncore.readwrite`` does);
* ``ExitNow`` ends the ``await loop()`` calls waiting on that dispatcher's
  map, with that exception (asyncore's ``loop()`` raises it to its caller);
  with nobody waiting it is reported through the hub's error sink.
  ``KeyboardInterrupt`` and ``SystemExit`` propagate out of the event loop,
  as they do from any asyncio callback, and the hub stops dispatching
  asyncore events so that its stop sequence can run.

Like an asyncio task, each dispatcher runs its handlers in a copy of the
``contextvars`` context it was created in.

Interest is re-evaluated right after each handler of a dispatcher runs, and
for every dispatcher once per loop pass in which any handler ran (a handler
may change another dispatcher's mind: asynchat's ``push``, waitress's
trigger).  That sweep is the one cost that grows with the number of
dispatchers, so it is coalesced: it takes at most :data:`SWEEP_SHARE` of the
time, and runs at least every :data:`SWEEP_INTERVAL` seconds when nothing
happens (for ``readable()`` that changes with the clock).  See
docs/asyncore.md for the figures.

The default map (``asyncore.socket_map``) is a hub-owned :class:`SocketMap`
while the hub runs; pass ``map=SocketMap()`` for a map of your own, or any
plain dict (driven too, but at asyncore's O(connections) cost per pass).
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any, Callable, Optional

from .._adapter import FrameworksArg
from .._convert import register
from .._deprecation import renamed_getattr
from .._errors import HubNotRunningError
from .._hub import DEFAULT_STOP_TIMEOUT
from .._run import LoopFactoryArg
from ._compat import _map_of
from ._driver import _Driver
from ._errors import (
    AsyncoreBridgeError,
    AsyncoreTypeError,
    HubOwnsLoopError,
    NotAttachedError,
    WrongThreadError,
)
from ._installer import install_loop
from ._socketmap import SocketMap
from ._state import _add_flavor, _flavors, asyncore
from ._sweep import SWEEP_INTERVAL, SWEEP_SHARE

__all__ = [
    "SWEEP_INTERVAL",
    "SWEEP_SHARE",
    "AsyncoreBridgeError",
    "AsyncoreTypeError",
    "HubOwnsLoopError",
    "NotAttachedError",
    "SocketMap",
    "WrongThreadError",
    "closed",
    "dispatchers",
    "install",
    "loop",
    "refresh",
]


def _driver() -> _Driver:
    driver = AsyncoreAdapter.current().driver
    if driver.detached:
        raise NotAttachedError(
            "asyncore is being detached from the running bridges hub, which is stopping. "
            "Use asyncore from code that runs while the hub runs."
        )
    return driver


def install(
    module: ModuleType | None = None,
    *,
    frameworks: FrameworksArg = "auto",
    loop_factory: LoopFactoryArg = None,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> None:
    """``install()``: a top-level ``asyncore.loop()`` runs a hub; ``install(module)``: drive
    a module with asyncore's interface (waitress's wasyncore, medusa's asyncore_25).

    ``install()`` is step one of a migration: call it first thing, and the
    program's unchanged ``asyncore.loop()`` runs :func:`bridges.run` with these
    ``frameworks`` (asyncore always among them), ``loop_factory`` and
    ``stop_timeout``, until the map is empty or SIGTERM/Ctrl-C stops the hub;
    then ``asyncore.loop`` is asyncore's own again.

    ``install(module)``: while a hub runs, the module's ``socket_map`` is a
    hub-owned :class:`SocketMap`, its ``loop()`` refuses to block the hub, and
    its ``ExitNow`` follows asyncore's rule.  Applies from the next hub start,
    and at once to the hub running in this thread.  ``waitress.wasyncore`` and
    ``supervisor.medusa.asyncore_25`` are installed automatically when they are
    imported before the hub starts.
    """
    if module is None:
        install_loop(
            asyncore, frameworks=frameworks, loop_factory=loop_factory, stop_timeout=stop_timeout
        )
        return
    for attr in ("socket_map", "loop", "ExitNow"):
        if not hasattr(module, attr):
            raise AsyncoreTypeError(
                f"bridges.asyncore.install() needs a module with asyncore's interface; "
                f"{module.__name__} has no {attr!r}. Pass the module that defines "
                "socket_map, loop() and ExitNow (e.g. waitress.wasyncore), not a module "
                "that only uses it."
            )
    if module in _flavors:
        return
    _add_flavor(module)
    try:
        driver = _driver()
    except HubNotRunningError:
        return
    driver._take_over(module)


# -- the awaitable API --------------------------------------------------------


async def loop(map: Optional[Any] = None, timeout: Optional[float] = None) -> None:
    """Wait until the map is empty (every dispatcher closed) or ``timeout`` seconds pass.

    The awaitable replacement for ``asyncore.loop()``.  The hub runs the
    dispatchers whether or not anyone awaits this; awaiting it is how asyncio
    code waits for them.  ``map`` is None (``asyncore.socket_map``), a
    :class:`SocketMap` or a plain dict.  ``timeout`` is the total time to wait
    (None: no limit) -- not asyncore's per-poll timeout.  ``ExitNow`` raised by
    a dispatcher of the map is raised here.
    """
    driver = _driver()
    target = driver.adopt(map)
    if not target:
        return
    fut: asyncio.Future[None] = driver.loop.create_future()
    waiters = driver.loop_waiters.setdefault(id(target), set())
    waiters.add(fut)
    try:
        if timeout is None:
            await fut
        else:
            await asyncio.wait({fut}, timeout=timeout)
            if fut.done():
                fut.result()
    finally:
        waiters.discard(fut)
        if not fut.done():
            fut.cancel()


async def closed(dispatcher: Any) -> None:
    """Wait until ``dispatcher`` has closed (left its socket map).

    Returns at once when it is not in a map the hub drives (already closed).
    Cancelling the wait does not close the dispatcher.
    """
    driver = _driver()
    entry = driver.by_obj.get(id(dispatcher))
    if entry is None:
        socket_map = _map_of(dispatcher)
        if socket_map is not None:
            driver.adopt(socket_map)
        entry = driver.by_obj.get(id(dispatcher))
        if entry is None or entry.dead:
            return
    fut: asyncio.Future[None] = driver.loop.create_future()
    waiters = driver.closed_waiters.setdefault(id(dispatcher), set())
    waiters.add(fut)
    try:
        await fut
    finally:
        waiters.discard(fut)


def refresh(dispatcher: Any = None) -> None:
    """Re-evaluate ``readable()``/``writable()`` now, for one dispatcher or all.

    The hub does this after each of a dispatcher's handlers and in its
    periodic sweep; call it when asyncio code changed a dispatcher's mind
    (e.g. queued output on it) and the change should not wait for the sweep.
    """
    _driver().refresh(dispatcher)


def dispatchers() -> list[Any]:
    """The dispatchers the running hub drives now (every map), e.g. to report leaks."""
    return [entry.obj for entry in _driver().entries.values() if not entry.dead]


_CONVERTERS: dict[type, Callable[[Any], Any]] = {asyncore.dispatcher: closed}
for _native, _converter in _CONVERTERS.items():
    register(_native, _converter)

from ._adapter import AsyncoreAdapter  # noqa: E402 - it uses the classes above

__getattr__ = renamed_getattr(
    __name__, {"BlockingLoopError": "HubOwnsLoopError"}, globals().__getitem__
)
