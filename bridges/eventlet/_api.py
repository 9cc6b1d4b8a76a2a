"""The public API of bridges.eventlet (imported on first use, see the package docstring).

eventlet on the hub: greenthreads and asyncio tasks in one thread, on one loop.

asyncio is the master.  At attach, the hub makes this thread's eventlet hub
a :class:`bridges.eventlet._hub.LoopHub`, an eventlet hub whose timers and fd
listeners are the asyncio loop's own; when one fires, asyncio switches into
eventlet's hub greenlet, which runs the greenthreads that are due and
switches back.  Green sockets, ``eventlet.wsgi``, ``GreenPool``, ``Queue``,
``Timeout`` and ``tpool`` work unchanged, on the stdlib loop and uvloop.

Public API::

    from bridges import eventlet as be
    gt = be.spawn(aw)                      # an awaitable as a GreenThread
    result = be.wait(aw)                   # inside a greenthread: block only it
    await bridges.awaitable(greenthread)   # also eventlet.event.Event and GreenPool

Portals: an eventlet blocking call inside an asyncio task on the hub
suspends only that task (see :mod:`bridges._portal`), and ``be.wait(aw)``
from sync code that such a task runs awaits ``aw`` inline in the task.  Where
there is no task to suspend (a loop callback, ``portals=False``) the call
raises :class:`HubOwnsLoopError` at once instead of stalling every task.
"""

from __future__ import annotations

from . import _quiet  # noqa: F401  (first: eventlet without its notice)

# isort: split

import asyncio
import inspect
from typing import Any, Awaitable, Callable, TypeVar

import eventlet
import eventlet.event
import eventlet.greenpool
from eventlet.greenthread import GreenThread
from greenlet import GreenletExit, getcurrent

from .._convert import awaitable, to_future
from .._green_wait import wait_for_future
from .._portal import PortalGreenlet, await_inline
from . import _compat
from ._adapter import EventletAdapter
from ._hub import RECEIVED, HubOwnsLoopError, LoopHub
from ._patching import MixedPatchingError

__all__ = [
    "CONVERTERS",
    "EventletAdapter",
    "HubOwnsLoopError",
    "LoopHub",
    "MixedPatchingError",
    "get_hub",
    "in_greenthread",
    "spawn",
    "wait",
]

T = TypeVar("T")


def get_hub() -> LoopHub:
    """The eventlet hub bound to the running bridges hub."""
    ehub = _compat.current_hub()
    if isinstance(ehub, LoopHub) and not ehub.destroyed:
        # This thread's eventlet hub is the one of the bridges hub running here
        # (a thread runs one loop at a time): the bridges' hot paths skip the
        # lookup through the bridges hub.
        return ehub
    return EventletAdapter.current().ehub  # raises NotAttachedError, saying what to do


# -- eventlet -> asyncio ----------------------------------------------------


def _in_greenthread(what: str) -> LoopHub:
    """This thread's eventlet hub, if the caller is a greenthread that may block on it."""
    ehub = _compat.current_hub()
    current = getcurrent()
    if type(ehub) is not LoopHub or ehub.destroyed:
        ehub = get_hub()  # raises NotAttachedError, saying what to do
    if current is ehub.greenlet or current is ehub.asyncio_side:
        where = "eventlet's hub (a timer callback)" if current is ehub.greenlet else "asyncio code"
        raise HubOwnsLoopError(
            f"{what} blocks the calling greenthread, but it was called from {where}, which "
            "has no greenthread to block. From a coroutine, use `await bridges.awaitable(...)` "
            "or `await aw` instead; from a callback, spawn a greenthread: eventlet.spawn(f)."
        )
    return ehub


def wait(aw: Awaitable[T] | Any) -> T:
    """Block the calling greenthread (only it) until ``aw`` is done; return its result.

    ``aw`` is anything :func:`bridges.awaitable` accepts.  Its exception is
    raised here (the same object); if it is cancelled,
    ``asyncio.CancelledError``.

    From sync code that a portal-task runs (an asyncio task on the hub that
    called legacy code), ``aw`` is awaited inline in that task, as greenback's
    ``await_`` does: no new task, the task's own context, and cancelling the
    task cancels ``aw``.  From a greenthread, a coroutine runs as a hub task
    in a copy of the greenthread's context; killing the greenthread (or an
    ``eventlet.Timeout``) cancels ``aw``.
    """
    current = getcurrent()
    if type(current) is PortalGreenlet:
        return await_inline(current.portal, aw if inspect.iscoroutine(aw) else awaitable(aw))  # type: ignore[no-any-return]
    try:
        ehub = _in_greenthread("bridges.eventlet.wait()")
    except HubOwnsLoopError:
        if inspect.iscoroutine(aw):
            aw.close()  # refused: don't leave a "never awaited" warning behind
        raise
    # An asyncio future is its own future (what to_future() returns for it,
    # without the converter lookup): the common case, on the round trip's path.
    future = aw if type(aw) in _PLAIN_FUTURES else to_future(aw)
    if future.done():
        return future.result()  # type: ignore[no-any-return]
    return wait_for_future(future, current.switch, ehub.resume_from_asyncio, ehub.switch)  # type: ignore[no-any-return]


_PLAIN_FUTURES = frozenset({asyncio.Future, asyncio.Task})


def spawn(aw: Awaitable[T] | Any) -> GreenThread:
    """Run ``aw`` (anything :func:`bridges.awaitable` accepts) as a greenthread.

    The greenthread ends with the awaitable's result or exception.  Killing
    the greenthread cancels the awaitable; cancelling the awaitable's task
    ends the greenthread with ``GreenletExit`` (what ``gt.wait()`` raises for
    a killed greenthread).  A coroutine runs as a hub task in a copy of the
    caller's context.
    """
    get_hub()
    future = to_future(aw)
    gt = eventlet.spawn(_run_spawned, future)
    gt.link(_cancel_when_dead, future)
    return gt


def _cancel_when_dead(_gt: GreenThread, future: asyncio.Future[Any]) -> None:
    future.cancel()


def _run_spawned(future: asyncio.Future[T]) -> T:
    try:
        return wait(future)
    except asyncio.CancelledError:
        raise GreenletExit from None


# -- asyncio awaits eventlet ------------------------------------------------


class _Link:
    """Carries a GreenThread's outcome into an asyncio future, and cancellation back."""

    __slots__ = ("future", "gt")

    def __init__(self, gt: GreenThread, future: asyncio.Future[Any]) -> None:
        self.gt = gt
        self.future = future

    def __call__(self, gt: GreenThread) -> None:
        # The link: runs inside the dying greenthread, whose outcome is ready.
        setattr(gt, RECEIVED, True)
        future = self.future
        if future.done():
            return
        # Settled from eventlet's side: nothing to clean up, so spare the loop
        # the done callback's handle.
        future.remove_done_callback(self.done)
        try:
            result = gt.wait()
        except GreenletExit:
            future.cancel(f"greenthread {gt!r} was killed")
        except BaseException as exc:  # noqa: BLE001 - every outcome is handed over unchanged
            future.set_exception(exc)
        else:
            future.set_result(result)

    def done(self, future: asyncio.Future[Any]) -> None:
        gt = self.gt
        gt.unlink(self)
        if future.cancelled() and not gt.dead:
            get_hub().run_from_asyncio(gt.kill)


def _from_greenthread(gt: GreenThread) -> asyncio.Future[Any]:
    """A GreenThread as a future: result, the same exception, kill <-> cancel.

    Awaiting a greenthread that has not started yet is asyncio's ``wait()``:
    as native eventlet's ``wait`` switches to the hub at once, its start runs
    now, and one that does not block has finished before the awaiting
    coroutine suspends (one loop iteration instead of two).
    """
    future = asyncio.get_running_loop().create_future()
    link = _Link(gt, future)
    future.add_done_callback(link.done)
    gt.link(link)
    if not future.done() and not gt:
        ehub = get_hub()
        ehub.start_now(gt)
    return future


def _from_event(event: eventlet.event.Event) -> asyncio.Future[Any]:
    """An ``eventlet.event.Event``: its value, or the exception sent with ``send_exception``.

    The future takes a waiting greenthread's place among the event's waiters,
    so ``send()`` settles it in the hub greenlet as it would wake a greenthread;
    cancelling the future takes it out again.
    """
    future = asyncio.get_running_loop().create_future()
    if event.ready():
        try:
            future.set_result(event.wait())  # ready: returns (or raises) at once
        except BaseException as exc:  # noqa: BLE001 - the sent exception, handed over unchanged
            future.set_exception(exc)
        return future
    waiter = _EventWaiter(event, future)
    _compat.add_event_waiter(event, waiter)
    future.add_done_callback(waiter.done)
    return future


class _EventWaiter:
    """Stands where a greenthread blocked in ``Event.wait()`` would: ``send()`` switches to it."""

    __slots__ = ("event", "future")

    def __init__(self, event: eventlet.event.Event, future: asyncio.Future[Any]) -> None:
        self.event = event
        self.future = future

    def switch(self, result: Any = None) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def throw(self, *exc_info: Any) -> None:
        error = exc_info[1] if len(exc_info) > 1 and exc_info[1] is not None else exc_info[0]
        if isinstance(error, type):
            error = error()
        if not self.future.done():
            self.future.set_exception(error)

    def done(self, _: asyncio.Future[Any]) -> None:
        _compat.remove_event_waiter(self.event, self)


def _from_pool(pool: eventlet.greenpool.GreenPool) -> asyncio.Future[Any]:
    """A ``GreenPool``: done when every greenthread it runs has finished (``waitall``)."""
    return _from_greenthread(eventlet.spawn(pool.waitall))


CONVERTERS = {
    GreenThread: _from_greenthread,
    eventlet.event.Event: _from_event,
    eventlet.greenpool.GreenPool: _from_pool,
}


async def in_greenthread(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run a plain test function in a greenthread and await its outcome (then what it returned).

    The pytest plugin runs plain tests this way when eventlet is attached, so
    that they may block on eventlet and call ``be.wait``.
    """
    from .._pytest.runner import outcome_of, settle

    gt = eventlet.spawn(outcome_of, func, kwargs)
    return await settle(await awaitable(gt))
