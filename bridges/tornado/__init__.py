"""Tornado on the hub: one IOLoop bound to the hub's asyncio loop.

Since Tornado 5 an ``IOLoop`` is a thin wrapper around an asyncio loop and
Tornado's ``Future`` *is* ``asyncio.Future``, so most of Tornado already runs
on any asyncio loop.  What this adapter adds is what Tornado cannot know about
the hub:

* **One IOLoop per hub.**  ``attach`` binds exactly one IOLoop to the hub's
  loop (adopting one that already exists, as ``tornado.testing`` makes), so
  ``IOLoop.current()`` inside the hub is :func:`ioloop`.  A bare ``IOLoop()``
  would create a second asyncio loop that never runs; we never make one.
* **``yield`` anything.**  ``tornado.gen.convert_yielded`` is taught every
  type ``bridges.awaitable()`` knows (Deferreds, greenlets, concurrent
  futures, Tulip-era generators, and whatever users register later), so
  ``@gen.coroutine`` code can ``yield`` them, alone or mixed in a list.
* **Cancellation reaches the bottom.**  On Tornado 6.2-6.5 a ``@gen.coroutine``
  whose yielded future is cancelled never resolves (tornado issue 3537); the
  fix that Tornado 6.6 shipped is applied to those versions.  And cancelling a
  ``@gen.coroutine``'s future cancels the future it is waiting on, as
  cancelling an asyncio task does (Tornado itself never does), so the hub's
  stop sequence reaches the Deferred or thread that legacy code waits on.
* **Errors reach the hub.**  Errors Tornado can only log ("Exception in
  callback ...") go to ``hub.report`` once instead.
* **Ownership.**  Tornado's fd registrations go through the hub's fd
  registry, so a conflict with another framework is an error, not a silent
  replacement; ``IOLoop.stop()`` asks the hub to stop, as ``reactor.stop()``
  does, instead of stopping the loop under ``bridges.run``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import sys
import threading
import types
from dataclasses import dataclass
from typing import Any, Callable, Optional

import tornado
import tornado.testing
from tornado import gen
from tornado.concurrent import future_set_exc_info, future_set_result_unless_cancelled
from tornado.ioloop import IOLoop
from tornado.log import app_log
from tornado.platform.asyncio import AsyncIOLoop

from .. import _convert
from .._errors import BridgeError
from .._hub import Hub, current_hub

__all__ = [
    "HubAsyncHTTPTestCase",
    "HubAsyncTestCase",
    "HubTestMixin",
    "IOLoopOwnedByHubError",
    "TornadoNotAttachedError",
    "executor",
    "future",
    "install",
    "ioloop",
]

OWNER = "tornado"
"""The owner name Tornado's fds carry in the hub's fd registry."""


class TornadoNotAttachedError(BridgeError, RuntimeError):
    """Tornado was used through the hub, but the hub did not attach it."""


class IOLoopOwnedByHubError(BridgeError, RuntimeError):
    """Code tried to start the hub's IOLoop (``start``, ``run_sync``), whose loop the hub runs."""


# -- the hub's IOLoop -----------------------------------------------------------


class _HubIOLoop(AsyncIOLoop):
    """The IOLoop the hub creates: Tornado's own, except for who runs the loop.

    ``start``/``run_sync`` cannot run a loop that is already running, so they
    fail with a message saying what to do.  ``stop`` is how Tornado programs
    shut down; on the hub it requests the hub's stop sequence (as SIGTERM
    does) instead of stopping the loop under ``bridges.run``, which would
    abort it.  ``close`` releases Tornado's registrations but leaves the
    asyncio loop, which belongs to the hub, open.
    """

    _bridges_hub: Optional[Hub] = None

    def start(self) -> None:
        if self._bridges_hub is None:
            super().start()
            return
        raise IOLoopOwnedByHubError(
            "IOLoop.start() was called on the hub's IOLoop, but the hub already "
            "runs its loop. Remove the start() call and run your startup code inside "
            "bridges.run(main); to keep serving, await something that never finishes in main "
            "(e.g. `await asyncio.Event().wait()`); to stop, call IOLoop.current().stop()."
        )

    def run_sync(self, func: Callable[..., Any], timeout: Optional[float] = None) -> Any:
        """Refuse before anything is scheduled.

        Tornado's ``run_sync`` schedules ``func`` with ``add_callback`` and only
        then calls ``start``: letting ``start`` refuse would still run ``func``
        on the next pass, and its completion would call ``stop`` -- which on
        the hub stops the whole service.
        """
        if self._bridges_hub is None:
            return super().run_sync(func, timeout=timeout)
        raise IOLoopOwnedByHubError(
            "IOLoop.run_sync() was called on the hub's IOLoop, but the hub already runs its "
            "loop, so run_sync cannot start it to wait for func. Nothing was scheduled. "
            "Await the function instead (`await func()`, or `await bridges.awaitable(...)` for "
            "a Tornado future), or call run_sync only outside bridges.run."
        )

    def stop(self) -> None:
        hub = self._bridges_hub
        if hub is None:
            super().stop()
            return
        hub.request_stop("IOLoop.stop()")

    def close(self, all_fds: bool = False) -> None:
        if self._bridges_hub is None:
            super().close(all_fds=all_fds)
            return
        _release_handlers(self, all_fds=all_fds)


class _HubSelector:
    """Stands in for the IOLoop's ``selector_loop``: routes Tornado's fd registrations
    through the hub's registry, so another framework claiming the same fd gets
    ``FdConflictError`` instead of silently stealing Tornado's events.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.original: Any = None
        """The selector loop Tornado used before (the asyncio loop itself, as a rule)."""

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self.hub.add_reader(fd, callback, *args, owner=OWNER)

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self.hub.add_writer(fd, callback, *args, owner=OWNER)

    def remove_reader(self, fd: Any) -> bool:
        # An fd registered before the hub attached (an adopted IOLoop) is not in
        # the hub's registry: remove it from the loop directly.
        return self.hub.remove_reader(fd, owner=OWNER) or self.original.remove_reader(fd)

    def remove_writer(self, fd: Any) -> bool:
        return self.hub.remove_writer(fd, owner=OWNER) or self.original.remove_writer(fd)

    def close(self) -> None:
        """``BaseAsyncIOLoop.close`` closes a selector loop that is not the asyncio loop;
        ours is only a view of the hub's loop, which the hub closes."""


@dataclass
class _State:
    ioloop: IOLoop
    created: bool
    """True when the hub made the IOLoop (and unbinds it at detach); False when it
    adopted one that already existed (``tornado.testing``), which it leaves bound."""
    selector: _HubSelector
    """The stand-in selector; its ``original`` goes back to the IOLoop at detach."""


# -- Tornado internals, isolated ----------------------------------------------------
# Each function below touches one private detail of Tornado.  Checked on Tornado
# 6.2, 6.3.3, 6.4.2, 6.5.2 and 6.6.1; tests/test_tornado_internals.py fails if one
# of them changes.


def _bound_ioloop(loop: asyncio.AbstractEventLoop) -> Optional[IOLoop]:
    """The IOLoop Tornado has bound to ``loop``, without creating one.

    ``IOLoop.current(instance=False)`` is documented as deprecated, and
    ``IOLoop.current()`` would create one, so read Tornado's map directly.
    """
    return IOLoop._ioloop_for_asyncio.get(loop)


def _unbind_ioloop(ioloop: IOLoop) -> None:
    """Forget ``ioloop``'s binding, as ``IOLoop.close()`` does, but leave the loop open."""
    loop = ioloop.asyncio_loop  # type: ignore[attr-defined]
    if IOLoop._ioloop_for_asyncio.get(loop) is ioloop:
        del IOLoop._ioloop_for_asyncio[loop]


def _release_handlers(ioloop: IOLoop, *, all_fds: bool) -> None:
    """Remove every fd handler of ``ioloop`` (closing the fds if ``all_fds``), as
    ``BaseAsyncIOLoop.close`` does before it closes the asyncio loop."""
    for fd in list(ioloop.handlers):  # type: ignore[attr-defined]
        fileobj, _ = ioloop.handlers[fd]  # type: ignore[attr-defined]
        ioloop.remove_handler(fd)
        if all_fds:
            ioloop.close_fd(fileobj)


def _swap_selector(ioloop: IOLoop, selector: Any) -> Any:
    """Replace the object Tornado registers fds with; return the previous one."""
    previous = ioloop.selector_loop  # type: ignore[attr-defined]
    ioloop.selector_loop = selector  # type: ignore[attr-defined]
    return previous


def _run_resolving_cancellation(self: Any) -> None:
    """``gen.Runner.run`` as Tornado 6.6 has it, installed on Tornado 6.2-6.5.

    Before 6.6 the runner read a yielded future's outcome with ``except
    Exception``; ``asyncio.CancelledError`` is a ``BaseException``, so a
    cancelled future escaped the runner: the generator was never resumed and
    the coroutine's future never resolved (tornado issue 3537).  Like 6.6,
    this throws the ``CancelledError`` into the generator, which may handle
    it; if it escapes, the coroutine's future is cancelled.  It also throws
    the exception object itself, as 6.3+ do, rather than the three-argument
    ``throw`` that Python 3.12 deprecates.
    """
    if self.running or self.finished:
        return
    try:
        self.running = True
        while True:
            future = self.future
            if future is None:
                raise Exception("No pending future")
            if not future.done():
                return
            self.future = None
            try:
                try:
                    value = future.result()
                except (Exception, asyncio.CancelledError) as caught:  # noqa: BLE001 - every outcome goes back into the generator
                    # Throw outside this handler, so that sys.exc_info() inside
                    # the generator is the thrown exception, not this one.
                    error: Optional[BaseException] = caught
                else:
                    error = None
                finally:
                    future = None
                if error is not None:
                    try:
                        yielded = self.gen.throw(error)
                    finally:
                        error = None
                else:
                    yielded = self.gen.send(value)
            except (StopIteration, gen.Return) as stop:
                self.finished = True
                self.future = gen._null_future
                future_set_result_unless_cancelled(self.result_future, stop.value)
                self.result_future = None
                return
            except asyncio.CancelledError:
                self.finished = True
                self.future = gen._null_future
                self.result_future.cancel()
                self.result_future = None
                return
            except Exception:  # noqa: BLE001 - the generator's error becomes its future's
                self.finished = True
                self.future = gen._null_future
                future_set_exc_info(self.result_future, sys.exc_info())
                self.result_future = None
                return
            if not self.handle_yield(yielded):
                return
            yielded = None
    finally:
        self.running = False


RESOLVES_CANCELLED_YIELDS = tornado.version_info >= (6, 6)
"""Whether this Tornado's own ``gen.coroutine`` resolves when a yielded future is cancelled."""


_tornados_runner_init = getattr(gen.Runner.__init__, "_bridges_wraps", gen.Runner.__init__)


def _runner_init_propagating_cancel(self: Any, *args: Any) -> None:
    """``gen.Runner.__init__``, then: cancelling the coroutine's future cancels what it waits on.

    Tornado has no task to cancel: cancelling a ``@gen.coroutine``'s future
    leaves the generator running, and whatever it yielded (a Deferred, a
    concurrent future, an inner coroutine) pending forever; when the hub stops
    and cancels the task awaiting such a coroutine, nothing below it learns.
    Like ``asyncio.Task.cancel``, we cancel the future the generator is
    waiting on; the runner then throws ``CancelledError`` into the generator
    at its ``yield`` (with the 3537 fix on Tornado < 6.6), which may handle it.
    """
    _tornados_runner_init(self, *args)
    if not self.finished:
        self.result_future.add_done_callback(functools.partial(_cancel_awaited, self))


_runner_init_propagating_cancel._bridges_wraps = _tornados_runner_init  # type: ignore[attr-defined]


def _cancel_awaited(runner: Any, result_future: asyncio.Future[Any]) -> None:
    if not result_future.cancelled() or runner.finished:
        return
    awaited = runner.future
    if awaited is not None and not awaited.done():
        awaited.cancel()


def _fix_gen_coroutine_cancellation() -> None:
    """Install the two cancellation fixes on ``gen.Runner`` (idempotent)."""
    gen.Runner.__init__ = _runner_init_propagating_cancel  # type: ignore[method-assign]
    if not RESOLVES_CANCELLED_YIELDS:
        gen.Runner.run = _run_resolving_cancellation  # type: ignore[method-assign]


# ``tornado.log.app_log`` messages that mean "an error nobody will ever see
# otherwise".  Request handler errors ("Uncaught exception ...") are left to
# Tornado: it answered them with a 500 and logged them on purpose.
_UNHANDLED_MESSAGES = frozenset(
    {
        "Exception in callback %r",  # IOLoop._run_callback, PeriodicCallback._run
        "Multiple exceptions in yield list",  # gen.multi_future
        "Exception in Future %r after timeout",  # gen.with_timeout
        "Exception after Future was cancelled",  # concurrent.future_set_exception_unless_cancelled
        "Error in connection callback",  # TCPServer._handle_connection
    }
)


# -- convert_yielded: yield anything the hub knows --------------------------------

_displaced: Any = None
"""A singledispatch function holding the ``convert_yielded`` implementations we took
over (Tornado's default for ``object``, and e.g. ``tornado.platform.twisted``'s for
``Deferred``), so that types bridges does not know keep Tornado's behaviour."""

_tornado_default: Any = None
"""Tornado's own ``convert_yielded`` implementation (the one registered for ``object``)."""

_TORNADOS_OWN = frozenset(
    {asyncio.Future, asyncio.Task, types.CoroutineType, list, dict, type(None), type(gen.moment)}
)
"""Types Tornado converts itself on every request (futures, coroutines, ``yield [...]``,
``gen.moment``): they go straight to Tornado's implementation, skipping two
registry look-ups on the hot path.  Exact types only; subclasses take the full path."""


def _convert_yielded(yielded: Any) -> Any:
    """``tornado.gen.convert_yielded`` on the hub: the hub's registry first, then Tornado's.

    A registered type (a Deferred, a greenlet, a concurrent future, a user's
    type) becomes an asyncio future through ``bridges.awaitable``, so
    cancelling it cancels the native primitive.  Everything else goes to the
    implementation we displaced (lists, dicts, futures, awaitables: Tornado's
    own rules), and a Tulip-era generator, which Tornado refuses, is driven
    by the hub.
    """
    cls = type(yielded)
    if cls in _TORNADOS_OWN:
        return _tornado_default(yielded)
    if _convert.has_converter(cls):
        return _convert.to_future(yielded)
    try:
        return _displaced.dispatch(cls)(yielded)
    except gen.BadYieldError:
        if inspect.isgenerator(yielded):
            return _convert.to_future(yielded)
        raise


def _claim_convert_yielded() -> None:
    """Make ``_convert_yielded`` the implementation for every type Tornado's registry has.

    ``convert_yielded`` is a ``singledispatch`` function, and the most specific
    registration wins: ``tornado.platform.twisted`` registers ``Deferred`` when
    it is first imported, which would bypass the hub for Deferreds (losing
    cancellation).  So we import it now, while we can still come after it,
    then take over each registration, keeping the displaced function for the
    types the hub does not know.  Idempotent; run at import and at each attach.
    """
    global _displaced, _tornado_default
    if _adapters_installed("twisted"):
        import tornado.platform.twisted  # noqa: F401 - registers its Deferred converter now
    registry = gen.convert_yielded.registry
    if _displaced is None:
        _tornado_default = registry[object]
        _displaced = functools.singledispatch(_tornado_default)
    for cls, implementation in list(registry.items()):
        if implementation is _convert_yielded:
            continue
        if cls is not object:
            _displaced.register(cls, implementation)
        gen.convert_yielded.register(cls, _convert_yielded)


def _adapters_installed(name: str) -> bool:
    from .. import _adapters

    spec = next(spec for spec in _adapters.ADAPTERS if spec.name == name)
    return _adapters.installed(spec)


# -- errors Tornado would only log --------------------------------------------------


class _ReportToHub(logging.Filter):
    """Send Tornado's "nobody will see this" errors to the hub's error sink, once.

    A record that reaches ``hub.report`` is dropped here, so the error is
    reported exactly once (through the loop's exception handler, where the
    pytest plugin and the application look), not logged twice.  Records from
    threads without a hub, or from a hub without Tornado, pass through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _UNHANDLED_MESSAGES or not record.exc_info:
            return True
        try:
            hub = current_hub()
        except BridgeError:
            return True
        if OWNER not in hub.state:
            return True
        hub.report(record.exc_info[1], f"tornado: {record.getMessage()}", logger=record.name)
        return False


_report_filter = _ReportToHub()
_filter_users = 0
_filter_lock = threading.Lock()


def _install_report_filter() -> None:
    global _filter_users
    with _filter_lock:
        if _filter_users == 0:
            app_log.addFilter(_report_filter)
        _filter_users += 1


def _remove_report_filter() -> None:
    global _filter_users
    with _filter_lock:
        _filter_users -= 1
        if _filter_users == 0:
            app_log.removeFilter(_report_filter)


# -- the adapter --------------------------------------------------------------------


def attach(hub: Hub) -> None:
    """Bind one IOLoop to the hub's loop (adopting an existing one) and route Tornado
    through the hub."""
    loop = hub.loop
    _fix_gen_coroutine_cancellation()
    _claim_convert_yielded()
    existing = _bound_ioloop(loop)
    if existing is not None:
        ioloop, created = existing, False
    else:
        ioloop, created = _HubIOLoop(asyncio_loop=loop, make_current=False), True
        ioloop._bridges_hub = hub
    selector = _HubSelector(hub)
    selector.original = _swap_selector(ioloop, selector)
    hub.state[OWNER] = _State(ioloop=ioloop, created=created, selector=selector)
    _install_report_filter()


def detach(hub: Hub) -> None:
    """Release Tornado's fd registrations and unbind the IOLoop the hub made.

    Tornado has no shutdown work of its own (servers are stopped by the code
    that started them); a server still listening when the hub stops loses its
    registrations here, and its sockets are closed by their owners or the GC.

    An adopted IOLoop keeps its binding and its handlers: its owner goes on
    running it (and closes it).  The fds it registered while the hub ran went
    through the hub's registry, which the hub empties from the loop when it
    stops, so they are moved out of the registry and back onto the asyncio
    loop directly, where the IOLoop's handlers registered before the hub
    attached already are.
    """
    state: Optional[_State] = hub.state.pop(OWNER, None)
    if state is None:
        return
    _remove_report_filter()
    ioloop = state.ioloop
    if state.created:
        _release_handlers(ioloop, all_fds=False)
        _swap_selector(ioloop, state.selector.original)
        ioloop._bridges_hub = None  # type: ignore[attr-defined]
        _unbind_ioloop(ioloop)
        return
    events = _events_in_registry(hub)
    for fd in events:
        ioloop.update_handler(fd, 0)
    _swap_selector(ioloop, state.selector.original)
    for fd, mask in events.items():
        ioloop.update_handler(fd, mask)


def _events_in_registry(hub: Hub) -> dict[int, int]:
    """Tornado's event mask for each fd Tornado holds in the hub's registry."""
    owners = hub.fd_owners()
    events: dict[int, int] = {}
    for role, flag in (("readers", IOLoop.READ), ("writers", IOLoop.WRITE)):
        for fd, owner in owners[role].items():
            if owner == OWNER:
                events[fd] = events.get(fd, 0) | flag
    return events


def _state() -> _State:
    hub = current_hub()
    state: Optional[_State] = hub.state.get(OWNER)
    if state is None:
        raise TornadoNotAttachedError(
            "Tornado is not attached to the running hub. Ask for it: "
            "bridges.run(main, frameworks=[..., 'tornado']) or "
            "bridges.Hub(frameworks=[..., 'tornado'])."
        )
    return state


def ioloop() -> IOLoop:
    """The hub's IOLoop; inside the hub ``IOLoop.current()`` is the same object."""
    return _state().ioloop


def future(obj: Any) -> asyncio.Future[Any]:
    """Anything ``bridges.awaitable()`` or Tornado accepts, as a Tornado future.

    A Tornado ``Future`` is an ``asyncio.Future``; this is
    ``tornado.gen.convert_yielded`` with the hub's types known, so lists and
    dicts of mixed primitives become one future, as in ``yield [a, b]``.
    """
    _state()
    return gen.convert_yielded(obj)  # type: ignore[no-any-return]


# -- the hub's executor for run_on_executor -----------------------------------------


class _HubExecutor(concurrent.futures.Executor):
    """An ``Executor`` that runs work on the current hub's default executor.

    ``@run_on_executor`` needs an object with ``submit()`` on ``self``;
    ``IOLoop.run_in_executor(None, ...)`` already uses the loop's default
    executor.  This lets both share one pool (the one ``bridges.run`` shuts
    down at exit), on the stdlib loop and on uvloop alike.  The hub is looked
    up at each ``submit``, so the object can be a class attribute made before
    any hub runs.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        loop = current_hub().loop
        outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            if not outcome.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - every outcome goes to the future
                outcome.set_exception(exc)
            else:
                outcome.set_result(result)

        loop.run_in_executor(None, call)
        return outcome

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The pool belongs to the hub's loop, which shuts it down when it stops."""


_EXECUTOR = _HubExecutor()


def executor() -> concurrent.futures.Executor:
    """An executor backed by the running hub's default executor.

    For ``@run_on_executor``: give the class ``executor = btn.executor()``.
    """
    return _EXECUTOR


# -- tornado.testing on the hub -----------------------------------------------------


class HubTestMixin:
    """Run a ``tornado.testing.AsyncTestCase`` on a hub.

    Put it first among the bases: ``class T(btn.HubTestMixin, AsyncHTTPTestCase)``.
    Tornado makes a fresh IOLoop for each test; ``setUp`` starts a hub on its
    loop (the hub adopts that IOLoop, so ``self.io_loop`` is ``btn.ioloop()``
    inside the test) and ``tearDown`` runs the hub's stop sequence before
    Tornado closes the loop.  ``@gen_test`` methods and ``self.io_loop.run_sync``
    then run with every framework in ``bridges_frameworks`` attached.
    """

    bridges_frameworks: Any = ("tornado",)
    hub: Hub
    io_loop: IOLoop

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        try:
            hub = Hub(frameworks=self.bridges_frameworks)
            self.io_loop.run_sync(hub.__aenter__)  # type: ignore[attr-defined]
        except BaseException:
            # unittest skips tearDown when setUp fails: close Tornado's loop here.
            super().tearDown()  # type: ignore[misc]
            raise
        self.hub = hub

    def tearDown(self) -> None:
        hub = self.__dict__.pop("hub", None)
        if hub is not None:
            self.io_loop.run_sync(  # type: ignore[attr-defined]
                functools.partial(hub.__aexit__, None, None, None)
            )
        super().tearDown()  # type: ignore[misc]


class HubAsyncTestCase(HubTestMixin, tornado.testing.AsyncTestCase):
    """``tornado.testing.AsyncTestCase`` with each test running on a hub."""


class HubAsyncHTTPTestCase(HubTestMixin, tornado.testing.AsyncHTTPTestCase):
    """``tornado.testing.AsyncHTTPTestCase`` with each test running on a hub."""


_fix_gen_coroutine_cancellation()
_claim_convert_yielded()


from ._installer import install  # noqa: E402 - it subclasses the hub's IOLoop above
