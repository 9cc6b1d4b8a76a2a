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

* the reactor (:class:`~bridges.twisted._reactor.HubReactor`) is installed
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
import contextlib
import sys
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.logger import formatEvent as _format_event
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from .._convert import register, to_future
from .._errors import BridgeError, HubNotRunningError
from .._hub import Hub, current_hub
from ._installer import deferred_before_run, install
from ._reactor import HubReactor, ReactorNotBoundError, ReactorRunError

__all__ = [
    "ForeignReactorError",
    "ReactorInUseError",
    "ReactorNotBoundError",
    "ReactorRunError",
    "attach",
    "deferred",
    "detach",
    "install",
]

T = TypeVar("T")
_REACTOR_MODULE = "twisted.internet.reactor"


class ForeignReactorError(BridgeError, error.ReactorAlreadyInstalledError):
    """Another Twisted reactor was installed before the hub could install its own."""


class ReactorInUseError(BridgeError, RuntimeError):
    """The process-global reactor already runs on another hub (another thread's loop)."""


@dataclass
class _State:
    reactor: HubReactor
    observer: Callable[[dict[str, Any]], None]


# -- attach / detach ------------------------------------------------------------


def attach(hub: Hub) -> Awaitable[None] | None:
    """Install (or re-bind) the reactor on ``hub.loop`` and start it running."""
    reactor = _install(hub)
    observer = _make_observer(hub)
    globalLogPublisher.addObserver(observer)
    try:
        reactor.prepare_start()
        # The hub owns the signals: with Twisted's handlers installed, asyncio's
        # add_signal_handler (and so SIGINT/SIGTERM handling) silently stops working.
        reactor.startRunning(installSignalHandlers=False)
    except BaseException:
        # The hub calls detach() only for adapters whose attach() returned.
        globalLogPublisher.removeObserver(observer)
        reactor.unbind()
        raise
    hub.state["twisted"] = _State(reactor, observer)
    if reactor.running:
        return None
    # A `before startup` trigger returned a Deferred: wait until the reactor runs.
    return _wait_running(reactor)


async def _wait_running(reactor: HubReactor) -> None:
    running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    reactor.callWhenRunning(lambda: running.done() or running.set_result(None))
    await running


def detach(hub: Hub) -> Awaitable[None] | None:
    """Run the shutdown triggers (awaited), stop the pool, hand the fds back to the hub."""
    state: _State | None = hub.state.pop("twisted", None)
    if state is None:
        return None
    return _detach(state)


async def _detach(state: _State) -> None:
    try:
        await state.reactor.shutdown()
    finally:
        globalLogPublisher.removeObserver(state.observer)


def _install(hub: Hub) -> HubReactor:
    """Install the hub's reactor, or re-bind the one an earlier run installed."""
    installed = sys.modules.get(_REACTOR_MODULE)
    if installed is None:
        from twisted.internet.main import installReactor

        reactor = HubReactor(hub)
        installReactor(reactor)
        return reactor
    if not isinstance(installed, HubReactor):
        raise ForeignReactorError(_foreign_reactor_message(installed, "the bridges hub attached"))
    if installed.hub is not None and installed.hub.loop.is_closed():
        _recover_from_closed_hub(installed, installed.hub)
    if installed.hub is not None:
        raise ReactorInUseError(
            "the Twisted reactor is process-global and already runs on another bridges hub "
            f"({installed.hub!r}). Twisted supports one reactor per process: run the "
            "Twisted code on that hub (hand it over with loop.call_soon_threadsafe), or "
            "stop that hub first."
        )
    installed.bind(hub)
    return installed


def _recover_from_closed_hub(reactor: HubReactor, dead: Hub) -> None:
    """Take the reactor back from a hub whose loop closed before its Twisted stage ran.

    A second Ctrl-C while stopping (or an application that closes its loop
    without leaving ``async with Hub()``) can end a loop before ``detach``
    unbound the reactor.  That hub can never run again, so nothing is lost by
    unbinding it here; refusing instead would make every later run fail.
    """
    state: _State | None = dead.state.pop("twisted", None)
    if state is not None:
        globalLogPublisher.removeObserver(state.observer)
    reactor.recover()


def _foreign_reactor_message(installed: Any, when: str) -> str:
    kind = type(installed)
    name = f"{kind.__module__}.{kind.__qualname__}"
    importers = _importers_of(installed)
    if importers:
        by = f"it was imported by {', '.join(importers[:3])}"
    else:
        by = f"it was installed by {kind.__module__} (or by code that imported {_REACTOR_MODULE})"
    return (
        f"a Twisted reactor ({name}) was already installed when {when}; {by}. "
        "Twisted allows one reactor per process, and bridges must install its own. "
        "Fix the import order: "
        "in a script that ends in reactor.run(), call bridges.twisted.install() first thing, "
        f"before anything imports {_REACTOR_MODULE}; with bridges.run(), do not import "
        f"{_REACTOR_MODULE} (`from twisted.internet import reactor`) at module level -- "
        "import it inside the code that runs on the hub; a twistd or twist service runs "
        "with `twistd --reactor=bridges` (or `twist --reactor=bridges`). "
        "Do not install another reactor (asyncioreactor.install(), pytest-twisted) "
        "in a process that uses bridges."
    )


def _importers_of(installed: Any) -> list[str]:
    """Modules whose globals hold the reactor: the best guess of who imported it first.

    Python keeps no record of who imported a module; a module that did
    ``from twisted.internet import reactor`` keeps it as a global, so those are
    named, the application's modules before Twisted's own.
    """
    found: list[str] = []
    for name, module in list(sys.modules.items()):
        if name == _REACTOR_MODULE or not isinstance(module, ModuleType):
            continue
        namespace = getattr(module, "__dict__", {})
        if any(value is installed for value in list(namespace.values())):
            found.append(name)
    found.sort(key=lambda name: (name.startswith(("twisted.", "bridges.")), name))
    return found


# -- errors Twisted logs, to the hub's error sink --------------------------------


def _make_observer(hub: Hub) -> Callable[[dict[str, Any]], None]:
    """A log observer that sends every logged Failure to ``hub.report``.

    That covers "Unhandled error in Deferred" (logged when a failed Deferred
    nobody handled is garbage collected), exceptions in reactor callbacks,
    timed calls, triggers and ``log.err()``.  ``hub.report`` reports each
    exception object once, however many times Twisted logs it.
    """

    def observe(event: dict[str, Any]) -> None:
        failure = event.get("log_failure", event.get("failure"))
        if not isinstance(failure, Failure):
            return
        # An observer that raises is removed by Twisted: never let the sink's trouble out.
        with contextlib.suppress(Exception):
            hub.report(failure.value, _describe(event))

    return observe


def _describe(event: dict[str, Any]) -> str:
    if event.get("log_namespace") == "twisted.internet.defer":
        return "Twisted: Unhandled error in Deferred"
    text = ""
    try:
        text = _format_event(event).strip()
    except Exception:  # noqa: BLE001 - a broken format string must not hide the error
        text = str(event.get("log_format") or "")
    return f"Twisted logged an error: {text}" if text else "Twisted logged an error"


# -- Deferred -> awaitable ----------------------------------------------------------


def _deferred_to_future(d: Deferred[T]) -> asyncio.Future[T]:
    """An asyncio future of the running loop that ends as ``d`` does.

    * result: the same object (the Deferred keeps it too, for later callbacks);
    * failure: the same exception object, with its traceback; the Deferred's
      failure is consumed, so no "Unhandled error in Deferred" is left behind;
    * the awaiting task cancelled: ``d.cancel()`` (its canceller runs), and the
      task sees its own CancelledError;
    * ``d`` cancelled by Twisted code: the awaiting task gets CancelledError.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise HubNotRunningError(
            "bridges.awaitable(deferred) needs the hub's running loop: await it from code "
            "that runs inside bridges.run(...) (or `async with bridges.Hub():`)."
        ) from None
    fut: asyncio.Future[T] = loop.create_future()

    def cancel_deferred(f: asyncio.Future[T]) -> None:
        if f.cancelled():
            d.cancel()

    # When the Deferred settles the future, the cancel hook is taken off first:
    # a done callback left on costs one more loop callback per await.
    def on_result(result: T) -> T:
        if not fut.done():
            fut.remove_done_callback(cancel_deferred)
            fut.set_result(result)
        return result

    def on_failure(failure: Failure) -> None:
        if fut.done():
            return  # the awaiting side cancelled; this is the canceller's outcome
        fut.remove_done_callback(cancel_deferred)
        exc = failure.value
        if isinstance(exc, (defer.CancelledError, asyncio.CancelledError)):
            fut.cancel(f"the Deferred was cancelled: {exc!r}" if str(exc) else None)
            return
        if exc.__traceback__ is None and isinstance(failure.tb, TracebackType):
            exc = exc.with_traceback(failure.tb)
        fut.set_exception(exc)
        return

    d.addCallbacks(on_result, on_failure)
    if not fut.done():
        fut.add_done_callback(cancel_deferred)
    return fut


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


def __getattr__(name: str) -> Any:
    # `bt.reactor`: the hub's reactor, without importing twisted.internet.reactor
    # at import time (that would install Twisted's default reactor).
    if name == "reactor":
        try:
            state: _State = current_hub().state["twisted"]
        except (BridgeError, KeyError):
            raise HubNotRunningError(
                "bridges.twisted.reactor is the reactor of the running hub, and no hub with "
                "Twisted attached is running. Use it inside bridges.run(..., "
                "frameworks=['twisted'])."
            ) from None
        return state.reactor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
