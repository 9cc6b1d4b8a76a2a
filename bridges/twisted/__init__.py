"""Twisted on the hub: the reactor runs on the hub's loop, and Deferreds are awaitable both ways.

::

    import asyncio
    import bridges
    from bridges import twisted as bt

    async def main():
        from twisted.internet import reactor, task   # import it here, on the hub
        d = task.deferLater(reactor, 0.1, lambda: "twisted")
        print(await bridges.awaitable(d))      # a Deferred, awaited from asyncio
        d2 = bt.deferred(asyncio.sleep(0.1, "asyncio"))  # a coroutine, as a Deferred
        print(await bridges.awaitable(d2))

    bridges.run(main, frameworks=["twisted"])

What this module takes care of (each point is a trap of the stock
integration, see docs/twisted.md):

* the reactor (:class:`bridges.twisted.HubReactor`; Scrapy users set
  ``TWISTED_REACTOR = "bridges.twisted.HubReactor"``) is installed
  from inside the running loop and follows the hub's loop across repeated
  ``bridges.run`` calls; a reactor installed by someone else is refused with
  an error that names it and the module that imported it;
* it is started with ``startRunning(installSignalHandlers=False)``: startup
  triggers, ``callWhenRunning``, ``reactor.running`` and the thread pool work,
  and the hub keeps the signals;
* ``reactor.stop()`` stops the hub; the shutdown triggers run (and are
  awaited) in the hub's stop sequence;
* a pending Deferred is awaited through :func:`bridges.awaitable`, never
  through Twisted's trampoline; coroutines become real asyncio tasks in
  :func:`deferred`;
* unhandled Failures and errors Twisted logs reach the hub's error sink.
"""

from __future__ import annotations

import asyncio
from asyncio import InvalidStateError, get_running_loop
from functools import partial
from types import TracebackType
from typing import Any, Callable, TypeVar

from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from .._convert import register, to_future
from .._deprecation import renamed_getattr
from .._errors import BridgeError, HubNotRunningError
from .._hub import current_hub
from ._compat import _callbacks_of
from ._errors import HubOwnsLoopError, NotAttachedError
from ._installer import deferred_before_run, install
from ._reactor import HubReactor

__all__ = [
    "ForeignReactorError",
    "HubOwnsLoopError",
    "HubReactor",
    "NotAttachedError",
    "ReactorInUseError",
    "deferred",
    "get_reactor",
    "install",
]

T = TypeVar("T")


class ForeignReactorError(BridgeError, error.ReactorAlreadyInstalledError):
    """Another Twisted reactor was installed before the hub could install its own."""


class ReactorInUseError(BridgeError, RuntimeError):
    """The process-global reactor already runs on another hub (another thread's loop)."""


# -- Deferred -> awaitable ----------------------------------------------------------


def _deferred_to_future(d: Deferred[T]) -> asyncio.Future[T]:
    """An asyncio future of the running loop that ends as ``d`` does.

    * result: the same object (the Deferred keeps it too, for later callbacks);
    * failure: the same exception object, with its traceback; the Deferred's
      failure is consumed, so no "Unhandled error in Deferred" is left behind;
    * the awaiting task cancelled: ``d.cancel()`` (its canceller runs), and the
      task sees its own CancelledError;
    * ``d`` cancelled by Twisted code: the awaiting task gets CancelledError.

    This runs on every await of a Deferred, so it does the least it can: one
    future, whose ``set_result`` wakes the task on the next loop pass (as a
    plain future fired by ``call_soon`` does); one module-level function as
    both callback and errback, put straight onto the Deferred's list when it
    has not fired yet (what ``addCallbacks`` does, minus its frame and
    checks); and a partial as the cancel hook: no closures per await.  The
    hook, a done callback, is most of what remains of the bridge's cost; a
    ``Future`` subclass overriding ``cancel()`` would need none, but costs
    more, as asyncio's task takes its slow path for any other future type.
    """
    try:
        loop = get_running_loop()
    except RuntimeError:
        raise HubNotRunningError(
            "bridges.awaitable(deferred) needs the hub's running loop: await it from code "
            "that runs inside bridges.run(...) (or `async with bridges.Hub():`)."
        ) from None
    fut: asyncio.Future[T] = loop.create_future()
    hook = partial(_cancel_deferred, d)
    args = (fut, hook)
    if d.called:
        # Fired, perhaps paused on another Deferred or running its callbacks:
        # addCallbacks runs ours now if it can.
        d.addCallbacks(_settle, _settle, callbackArgs=args, errbackArgs=args)
        if fut.done():
            return fut
    else:
        settle = (_settle, args, _NO_KWARGS)
        _callbacks_of(d).append((settle, settle))
    fut.add_done_callback(hook)
    return fut


def _cancel_deferred(d: Deferred[Any], fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        d.cancel()


def _settle(outcome: Any, fut: asyncio.Future[Any], hook: Callable[..., None]) -> Any:
    """The Deferred's callback and errback at once: one tuple fewer per await.

    The cancel hook is taken off first: a done callback left on costs one
    more loop callback per await.  A future already done was cancelled by
    the awaiting side, and ``outcome`` is the canceller's: the Deferred keeps
    a result, a failure is consumed.
    """
    if isinstance(outcome, Failure):
        _settle_failure(outcome, fut, hook)
        return None
    fut.remove_done_callback(hook)
    try:  # noqa: SIM105 - contextlib.suppress costs two calls per await
        fut.set_result(outcome)
    except InvalidStateError:
        pass
    return outcome


def _settle_failure(failure: Failure, fut: asyncio.Future[Any], hook: Callable[..., None]) -> None:
    if fut.done():
        return
    fut.remove_done_callback(hook)
    exc = failure.value
    if isinstance(exc, (defer.CancelledError, asyncio.CancelledError)):
        fut.cancel(f"the Deferred was cancelled: {exc!r}" if str(exc) else None)
        return
    if exc.__traceback__ is None and isinstance(failure.tb, TracebackType):
        exc = exc.with_traceback(failure.tb)
    fut.set_exception(exc)


_NO_KWARGS: dict[str, Any] = {}
"""The keyword arguments of the callbacks above: an exact (never mutated) dict, which
``callback(result, *args, **kwargs)`` passes on as it is; Twisted's own default, a
mappingproxy, is copied into a new dict on every call."""


register(Deferred, _deferred_to_future)


# -- awaitable -> Deferred ------------------------------------------------------------


def deferred(aw: Any) -> Deferred[Any]:
    """Any awaitable (or anything :func:`bridges.awaitable` accepts) as a Deferred.

    Coroutines run as real asyncio tasks of the hub (``asyncio.current_task()``,
    ``asyncio.sleep``, ``asyncio.timeout`` work in them), in a copy of the
    caller's context.  ``d.cancel()`` cancels the task and errbacks at once with
    ``defer.CancelledError`` (so ``d.addTimeout`` gives Twisted's
    ``TimeoutError``); a task that ends after that cannot fire the Deferred
    twice, and an exception it raises then is reported, not lost.
    """
    if isinstance(aw, Deferred):
        return aw
    early = deferred_before_run(aw)  # twistd starts services before the reactor runs
    if early is not None:
        return early
    fut = to_future(aw)
    d: Deferred[Any] = Deferred(lambda _: fut.cancel())
    fut.add_done_callback(lambda f: _fire(d, f))
    return d


def _fire(d: Deferred[Any], fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        if not d.called:
            d.errback(Failure(defer.CancelledError()))
        return
    exc = fut.exception()
    if d.called:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            _report(exc, f"bridges: {fut!r} raised after its Deferred had been cancelled")
        return
    if exc is not None:
        d.errback(Failure(exc, type(exc), exc.__traceback__))
    else:
        d.callback(fut.result())


def _report(exc: BaseException, message: str) -> None:
    try:
        current_hub().report(exc, message)
    except HubNotRunningError:  # the task ended after its hub stopped
        asyncio.get_running_loop().call_exception_handler({"message": message, "exception": exc})


def get_reactor() -> HubReactor:
    """The reactor of the running hub (``twisted.internet.reactor`` while it runs).

    Raises :class:`NotAttachedError` when no running hub has Twisted attached.
    """
    from ._adapter import TwistedAdapter

    return TwistedAdapter.current().reactor


def _resolve_renamed(new: str) -> Any:
    # ``bt.reactor`` stays lazy: importing twisted.internet.reactor at import
    # time would install Twisted's default reactor.
    return get_reactor() if new == "get_reactor()" else globals()[new]


__getattr__ = renamed_getattr(
    __name__,
    {
        "ReactorRunError": "HubOwnsLoopError",
        "ReactorNotBoundError": "NotAttachedError",
        "reactor": "get_reactor()",
    },
    _resolve_renamed,
)
