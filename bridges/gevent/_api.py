"""The public API of bridges.gevent (re-exported, lazily, by the package)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import weakref
from typing import Any, Awaitable, Callable, TypeVar

import gevent
import gevent.event
import gevent.hub
from gevent.exceptions import BlockingSwitchOutError
from gevent.greenlet import Greenlet, SuccessSpawnedLink
from gevent.pool import Group
from greenlet import GreenletExit, getcurrent

from .. import _errors
from .._convert import awaitable, register, to_future
from .._errors import BridgeError, NotAttachedError
from .._green_wait import wait_for_future
from .._hub import Hub
from .._portal import PortalGreenlet, await_inline, park
from ._compat import executor_future_class, hub_if_exists_getter
from ._loop import AsyncioLoop, ForkNotSupportedError

__all__ = [
    "AsyncioLoop",
    "ForkNotSupportedError",
    "GeventHubBusyError",
    "HubOwnsLoopError",
    "NotAttachedError",
    "get_hub",
    "spawn",
    "wait",
]

T = TypeVar("T")
_NAME = "gevent"
_hub_if_exists = hub_if_exists_getter()
"""This thread's gevent hub or None (compiled): the hot paths' way to find the bridged hub."""


class HubOwnsLoopError(_errors.HubOwnsLoopError, BlockingSwitchOutError):
    """A gevent blocking call was made where there is no greenlet to block.

    Also a gevent ``BlockingSwitchOutError`` (an ``AssertionError``), which is
    what gevent raises for a blocking call inside its own hub.
    """


class GeventHubBusyError(BridgeError, RuntimeError):
    """This thread already has a native gevent hub with work pending."""


def _blocking_message(loop: AsyncioLoop | None) -> str:
    if loop is None or loop.destroyed:
        return (
            "a gevent blocking call was made on the gevent hub of a bridges hub that has "
            "stopped. Objects made inside bridges.run() (greenlets, sockets, events) "
            "belong to that run; make new ones in the next run."
        )
    return (
        "a gevent blocking call (sleep, join, wait, socket I/O, bg.wait, ...) was made "
        "from asyncio code that has no portal to suspend: a loop callback (no task), a "
        "task started before gevent attached, or any task with portals off "
        "(bridges.run(..., portals=False) / bridges.Hub(portals=False)). Blocking here "
        "would stall every task. Make the call from a task of the hub with portals on "
        "(the default), await instead (await bridges.awaitable(greenlet_or_event), await "
        "asyncio.sleep(...)), or run the blocking code in a greenlet: "
        "await bridges.awaitable(gevent.spawn(f))."
    )


class _RefuseSwitch:
    """The parked hub's ``switch``: a portal-task's blocking call parks its task; others raise.

    Called as ``hub.switch()`` by gevent's blocking calls made on the asyncio
    side.  In the greenlet of a portal-task (see :mod:`bridges._portal`) the
    task is suspended until gevent wakes the greenlet; anywhere else there is
    nothing to suspend.
    """

    __slots__ = ("loop",)

    def __init__(self, loop: AsyncioLoop) -> None:
        self.loop = loop

    def __call__(self) -> Any:
        current = getcurrent()
        loop = self.loop
        if loop._direct and not loop._destroyed:
            # A greenlet that bg.wait's wake-up runs while the hub stays parked.
            return loop.switch_out_directly()
        if type(current) is PortalGreenlet and not loop.destroyed:
            return park(current.portal, loop.run_pending_from_asyncio)
        raise HubOwnsLoopError(_blocking_message(loop))


class _BridgeHub(gevent.hub.Hub):
    """gevent's hub greenlet, bound to an :class:`AsyncioLoop` on the bridges hub."""

    def __init__(self, loop: AsyncioLoop, bridges_hub: Hub) -> None:
        super().__init__(loop=loop)
        self.bridges_hub = bridges_hub
        self.name = "bridges"
        self.unreceived = _Unreceived(bridges_hub, loop)
        # gevent calls hub.switch() to block the current greenlet.  While the
        # hub greenlet is parked, the caller is on the asyncio side, which
        # cannot be suspended without stalling the loop: the loop swaps in
        # a _RefuseSwitch then, so that the blocking call fails loudly.
        loop.guard_hub_switch(self.__dict__, _RefuseSwitch(loop))

    def handle_system_error(self, type: Any, value: Any, tb: Any = None) -> None:
        # gevent throws KeyboardInterrupt/SystemExit into the hub's parent and
        # resumes the hub later; while it is away, callbacks scheduled from
        # asyncio code must ask for a pass of their own.
        loop = self.loop
        draining = loop._draining
        loop._draining = False
        try:
            super().handle_system_error(type, value, tb)
        finally:
            loop._draining = draining

    def print_exception(self, context: Any, t: Any, v: Any, tb: Any) -> None:
        # gevent prints unhandled greenlet/callback errors; on the hub they go
        # to the one error sink, once, like every other framework's.
        if v is None:
            v = t()
        if v.__traceback__ is None and tb is not None:
            v = v.with_traceback(tb)
        if isinstance(context, Greenlet) and context is getcurrent():
            self.unreceived.greenlet_failed(context, v)
            return
        self.bridges_hub.report(v, f"bridges: unhandled error in gevent: {context!r} failed")


class _Unreceived:
    """The exceptions of dead greenlets that nobody has received yet.

    Native gevent prints every exception a greenlet dies with, even one that
    ``join``/``get``/a link then receives.  The contract reports only what
    nobody receives, once, as asyncio does for a task whose exception is never
    retrieved:

    * A greenlet that ends with ``asyncio.CancelledError`` (``bg.wait`` on
      something cancelled) was cancelled, which is not an error: asyncio never
      reports a cancelled task, gevent never reports ``GreenletExit``.
    * A greenlet that has a receiving link when it dies (``join``, ``get``,
      ``joinall``/``iwait``, ``link``, ``link_exception``,
      ``bridges.awaitable``, ``bg.wait``) hands its exception over: no report.
      Bookkeeping links (a pool's or group's, ``link_value``, ``bg.spawn``'s)
      receive nothing.
    * Otherwise the report waits until the greenlet is garbage collected, or
      the hub stops, whichever comes first - unless something receives the
      exception in the meantime (a link added later, ``bridges.awaitable``).
      The decision is taken right after the greenlet died, before gevent
      notifies its links: a running greenlet's links cannot be read.
      ``greenlet.get()`` or ``.exception`` read after the death cannot be
      seen (gevent's Greenlet is compiled); such code is still reported.
    """

    def __init__(self, hub: Hub, loop: AsyncioLoop) -> None:
        self.hub = hub
        self.loop = loop
        self.pending: dict[int, tuple[weakref.ref[Greenlet], BaseException, str]] = {}

    def greenlet_failed(self, glet: Greenlet, exc: BaseException) -> None:
        """In the dying greenlet: decide once it is dead, before its links run."""
        if not isinstance(exc, asyncio.CancelledError):
            self.loop.run_callback_first(self._died, glet, exc)

    def _died(self, glet: Greenlet, exc: BaseException) -> None:
        if _has_receiver(glet):
            return
        key = id(glet)

        def collected(_ref: Any) -> None:
            entry = self.pending.pop(key, None)
            if entry is not None:
                self._report(entry[1], entry[2])

        self.pending[key] = (weakref.ref(glet, collected), exc, repr(glet))

    def received(self, glet: Greenlet) -> None:
        """Something received ``glet``'s exception after it died."""
        self.pending.pop(id(glet), None)

    def linked_after_death(self, glet: Greenlet) -> None:
        if id(glet) in self.pending and _has_receiver(glet):
            self.received(glet)

    def flush(self) -> None:
        """At stop: report what nobody received while the hub ran."""
        pending, self.pending = self.pending, {}
        for _ref, exc, name in pending.values():
            self._report(exc, name)

    def _report(self, exc: BaseException, name: str) -> None:
        self.hub.report(exc, f"bridges: unhandled error in gevent: {name} failed")


def _links_of(glet: Greenlet) -> list[Any] | None:
    """The callables linked to ``glet``, or None where they cannot be seen.

    The compiled Greenlet keeps them in a C attribute (``_links``) that Python
    cannot read; its one list is among the objects the greenlet references
    for the garbage collector.  Checked on gevent 26.7-26.9 (the pure-Python
    Greenlet has ``_links`` as an ordinary attribute).
    """
    links = getattr(glet, "_links", None)
    if isinstance(links, list):
        return links
    lists = [obj for obj in gc.get_referents(glet) if type(obj) is list]
    return lists[0] if len(lists) == 1 else None


def _has_receiver(glet: Greenlet) -> bool:
    """Whether something linked to ``glet`` receives the exception it died with."""
    links = _links_of(glet)
    if links is None:
        return bool(glet.has_links())
    return any(not _is_bookkeeping(link) for link in links)


def _is_bookkeeping(link: Any) -> bool:
    if isinstance(link, (SuccessSpawnedLink, _CancelWhenDead)):
        return True
    return isinstance(getattr(link, "__self__", None), Group)


def get_hub() -> gevent.hub.Hub:
    """The gevent hub bound to the running bridges hub.

    Raises :class:`NotAttachedError` when no running hub has gevent attached.
    """
    return _state().ghub


# -- gevent -> asyncio ------------------------------------------------------


def _in_greenlet(what: str) -> GeventAdapter:
    state = _state()
    current = getcurrent()
    if current is state.ghub:
        raise HubOwnsLoopError(
            f"{what} blocks the calling greenlet, but it was called from gevent's hub (a "
            "gevent callback), which has no greenlet to block. Spawn a greenlet instead: "
            "gevent.spawn(f)."
        )
    if state.gloop.parked:
        raise HubOwnsLoopError(f"{what}: {_blocking_message(state.gloop)}")
    return state


def wait(aw: Awaitable[T] | Any) -> T:
    """Block the calling greenlet (only it) until ``aw`` is done; return its result.

    ``aw`` is anything :func:`bridges.awaitable` accepts.  Its exception is
    raised here (the same object); if it is cancelled,
    ``asyncio.CancelledError``.

    From sync code that a portal-task runs (an asyncio task on the hub that
    called legacy code), ``aw`` is awaited inline in that task, as greenback's
    ``await_`` does: no new task, the task's own context, and cancelling the
    task cancels ``aw``.  From a greenlet, a coroutine runs as a hub task in
    a copy of the greenlet's context; killing the greenlet (or a
    ``gevent.Timeout``) cancels ``aw``.
    """
    current = getcurrent()
    if type(current) is PortalGreenlet:
        return await_inline(current.portal, aw if inspect.iscoroutine(aw) else awaitable(aw))  # type: ignore[no-any-return]
    ghub = _hub_if_exists()
    if type(ghub) is _BridgeHub and current is not ghub and not ghub.loop.parked:
        gloop = ghub.loop  # a greenlet of the running hub: _in_greenlet's checks, inline
    else:
        try:
            state = _in_greenlet("bridges.gevent.wait()")
        except BaseException:
            if inspect.iscoroutine(aw):
                aw.close()  # refused: don't leave a "never awaited" warning behind
            raise
        ghub, gloop = state.ghub, state.gloop
    future = aw if isinstance(aw, _Future) else to_future(aw)
    if future.done():
        return future.result()  # type: ignore[no-any-return]
    if isinstance(current, Greenlet) and current.parent is ghub:
        # Woken straight from the done callback, the hub parked; and when it
        # was woken so, it blocks straight back to the asyncio side.
        resume = gloop.resume_from_asyncio
        block = gloop.switch_out_directly if gloop._direct else ghub.switch
    else:
        # A raw greenlet, whose exception would reach the parked hub: woken
        # from a pass, as gevent's Waiter does.
        resume = gloop.run_soon_from_asyncio
        block = ghub.switch
    return wait_for_future(future, current.switch, resume, block)  # type: ignore[no-any-return]


_Future = asyncio.Future


def spawn(aw: Awaitable[T] | Any) -> Greenlet:
    """Run ``aw`` (anything :func:`bridges.awaitable` accepts) as a greenlet.

    The greenlet ends with the awaitable's result or exception.  Killing the
    greenlet cancels the awaitable; cancelling the awaitable's task ends the
    greenlet with ``GreenletExit``.  A coroutine runs as a hub task in a copy
    of the caller's context.
    """
    _state()
    future = to_future(aw)
    glet = Greenlet(_run_spawned, future)
    glet.gr_context = contextvars.copy_context()
    glet.rawlink(_CancelWhenDead(future))
    glet.start()
    return glet


class _CancelWhenDead:
    """bg.spawn's link: a dead greenlet cancels its awaitable (bookkeeping, not a receiver)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def __call__(self, _glet: Greenlet) -> None:
        self.future.cancel()


def _run_spawned(future: asyncio.Future[T]) -> T:
    try:
        return wait(future)
    except asyncio.CancelledError:
        raise GreenletExit from None


# -- asyncio awaits gevent --------------------------------------------------


class _Link:
    """Carries a gevent linkable's outcome into an asyncio future, and cancellation back."""

    __slots__ = ("future", "on_cancel", "settle", "source")

    def __init__(
        self,
        source: Any,
        future: asyncio.Future[Any],
        settle: Callable[[asyncio.Future[Any], Any], None],
        on_cancel: Callable[[Any], None] | None,
    ) -> None:
        self.source = source
        self.future = future
        self.settle = settle
        self.on_cancel = on_cancel

    def __call__(self, _source: Any) -> None:
        # rawlink callback, in the gevent hub greenlet.
        future = self.future
        if not future.done():
            # Settled from gevent's side: no cleanup is needed, so spare the
            # loop the done callback's extra handle.
            future.remove_done_callback(self.done)
            self.settle(future, self.source)

    def done(self, future: asyncio.Future[Any]) -> None:
        self.source.unlink(self)
        if future.cancelled() and self.on_cancel is not None:
            self.on_cancel(self.source)


def _link_future(
    source: Any,
    settle: Callable[[asyncio.Future[Any], Any], None],
    on_cancel: Callable[[Any], None] | None = None,
) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    if source.ready():
        settle(future, source)
        return future
    link = _Link(source, future, settle, on_cancel)
    source.rawlink(link)
    future.add_done_callback(link.done)
    return future


def _settle_from_greenlet(future: asyncio.Future[Any], glet: Greenlet) -> None:
    if glet.successful():
        value = glet.value
        if isinstance(value, GreenletExit):
            future.cancel(f"greenlet {glet!r} was killed")
        else:
            future.set_result(value)
    else:
        future.set_exception(glet.exception)
        hub = glet.parent
        if isinstance(hub, _BridgeHub):
            hub.unreceived.received(glet)


def _kill_greenlet(glet: Greenlet) -> None:
    if not glet.dead:
        glet.kill(block=False)


def _from_greenlet(glet: Greenlet) -> asyncio.Future[Any]:
    """A gevent Greenlet as a future: result, the same exception, kill <-> cancel.

    Awaiting a greenlet that has not run yet is asyncio's ``join()``: as
    native gevent's ``join`` switches to the hub at once, the hub's pending
    work (the greenlet's start among it) runs now, in this loop iteration.
    A greenlet that does not block is then already finished, and the
    awaiting coroutine goes on without a loop iteration for the start and
    another for its own wake-up, and without a link (benchmarks/bench_gevent.py
    ``spawn``).
    """
    if glet.gr_frame is None and not glet.dead:
        hub = glet.parent
        if type(hub) is _BridgeHub:
            hub.loop.run_pending_from_asyncio()
            if glet.dead:
                future = asyncio.get_running_loop().create_future()
                _settle_from_greenlet(future, glet)
                return future
    return _link_future(glet, _settle_from_greenlet, _kill_greenlet)


def _run_pending() -> None:
    """From asyncio code about to wait for gevent: run the hub's pending work first.

    What native gevent's ``get()``/``wait()`` do by switching to the hub: a
    greenlet that the pending work wakes and that sets the awaited object at
    once (a request/reply over a queue) does so before the coroutine
    suspends, and the coroutine goes on without two loop iterations.
    """
    hub = _hub_if_exists()
    if type(hub) is _BridgeHub:
        hub.loop.run_pending_from_asyncio()


def _settle_from_async_result(
    future: asyncio.Future[Any], result: gevent.event.AsyncResult
) -> None:
    if result.successful():
        future.set_result(result.value)
    else:
        future.set_exception(result.exception)


def _from_async_result(result: gevent.event.AsyncResult) -> asyncio.Future[Any]:
    if not result.ready():
        _run_pending()
    return _link_future(result, _settle_from_async_result)


def _settle_from_event(future: asyncio.Future[Any], _event: gevent.event.Event) -> None:
    future.set_result(True)


def _from_event(event: gevent.event.Event) -> asyncio.Future[Any]:
    if not event.ready():
        _run_pending()
    return _link_future(event, _settle_from_event)


def _from_executor_future(future: Any) -> asyncio.Future[Any]:
    """A ``gevent.threadpool.ThreadPoolExecutor`` future: its pool ``AsyncResult``'s outcome.

    A job already running in a thread cannot be stopped: cancelling the
    awaiting task stops waiting for it, as for ``run_in_executor``.
    """
    return _from_async_result(future.asyncresult)


_CONVERTERS: dict[type, Callable[[Any], asyncio.Future[Any]]] = {
    Greenlet: _from_greenlet,
    gevent.event.AsyncResult: _from_async_result,
    gevent.event.Event: _from_event,
}
_executor_future = executor_future_class()
if _executor_future is not None:
    _CONVERTERS[_executor_future] = _from_executor_future
for _native, _converter in _CONVERTERS.items():
    register(_native, _converter)

from ._adapter import GeventAdapter  # noqa: E402 - it uses the classes above

_state = GeventAdapter.current
"""The gevent adapter of the running hub, bound once: bg.wait and bg.spawn ask on every call."""
