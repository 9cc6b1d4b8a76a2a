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
  callback ...") go to ``hub.report`` once, and are still logged by
  ``tornado.application`` as Tornado's users (and ``ExpectLog``) expect.
* **Ownership.**  Tornado's fd registrations go through the hub's fd
  registry, so a conflict with another framework is an error, not a silent
  replacement; ``IOLoop.stop()`` asks the hub to stop, as ``reactor.stop()``
  does, instead of stopping the loop under ``bridges.run``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from typing import Any, Callable, Optional

import tornado.testing
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.log import app_log
from tornado.platform.asyncio import AsyncIOLoop

from .._deprecation import renamed_getattr
from .._errors import BridgeError, HubOwnsLoopError, NotAttachedError
from .._hub import Hub, current_hub
from ._compat import release_handlers

__all__ = [
    "HubAsyncHTTPTestCase",
    "HubAsyncTestCase",
    "HubOwnsLoopError",
    "HubTestMixin",
    "NotAttachedError",
    "executor",
    "future",
    "get_ioloop",
    "install",
    "ioloop",
]

OWNER = "tornado"
"""The owner name Tornado's fds carry in the hub's fd registry."""


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
        raise HubOwnsLoopError(
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
        raise HubOwnsLoopError(
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
        # Also after the tornado stage detached: shutdown code that awaited a
        # cleanup first (jupyter_server's SIGTERM handler) calls stop() late,
        # and stopping the asyncio loop then would abort bridges.run.  A hub
        # already stopping (or stopped) ignores the request.
        hub.request_stop("IOLoop.stop()")

    # Tornado's two dispatch points into user code (``IOLoop._run_callback``
    # for add_callback/call_later/add_future, ``_handle_events`` for fd
    # handlers; private, checked on Tornado 6.2-6.6), bracketed by the hub's
    # accounting slot.  Tornado's coroutines run as asyncio tasks: their steps
    # are accounted under asyncio.

    _bridges_meter: Any = None

    def _run_callback(self, callback: Callable[[], Any]) -> None:
        meter = self._bridges_meter
        if meter is None:
            super()._run_callback(callback)
            return
        outer = meter.begin(callback)
        try:
            super()._run_callback(callback)
        finally:
            meter.end(outer)

    def _handle_events(self, fd: int, events: int) -> None:
        meter = self._bridges_meter
        if meter is None:
            super()._handle_events(fd, events)
            return
        outer = meter.begin(self.handlers[fd][1])
        try:
            super()._handle_events(fd, events)
        finally:
            meter.end(outer)

    def close(self, all_fds: bool = False) -> None:
        if self._bridges_hub is None:
            super().close(all_fds=all_fds)
            return
        release_handlers(self, all_fds=all_fds)


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


# -- errors Tornado would only log --------------------------------------------------


class _ReportToHub(logging.Filter):
    """Send Tornado's "nobody will see this" errors to the hub's error sink, once.

    The record goes on to ``tornado.application`` as well: that is where
    Tornado's users look, and where their tests expect it
    (``tornado.testing.ExpectLog(app_log, "Exception in callback")``); so a
    loop without an exception handler of the application's does not log it
    a second time.  The hub reports each exception object once, however many
    paths it takes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _UNHANDLED_MESSAGES or not record.exc_info:
            return True
        try:
            hub = current_hub()
        except BridgeError:
            return True
        if hub.adapter("tornado") is None:
            return True
        hub.report(
            record.exc_info[1], f"tornado: {record.getMessage()}", logged=True, logger=record.name
        )
        return True


_report_filter = _ReportToHub()


__getattr__ = renamed_getattr(
    __name__,
    {
        "IOLoopOwnedByHubError": "HubOwnsLoopError",
        "TornadoNotAttachedError": "NotAttachedError",
    },
    globals().__getitem__,
)


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


# -- the hub's IOLoop, for code on the hub -----------------------------------------


def _state() -> TornadoAdapter:
    return TornadoAdapter.current()


def get_ioloop() -> IOLoop:
    """The hub's IOLoop; inside the hub ``IOLoop.current()`` is the same object.

    Raises :class:`bridges.NotAttachedError` when no running hub has Tornado attached.
    """
    return _state().ioloop


def ioloop() -> IOLoop:
    """The hub's IOLoop: :func:`get_ioloop` under the name the first releases gave it."""
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
            self._bridges_start_hub()
        except BaseException:
            # unittest skips tearDown when setUp fails: close Tornado's loop here.
            super().tearDown()  # type: ignore[misc]
            raise

    def tearDown(self) -> None:
        self._bridges_stop_hub()
        super().tearDown()  # type: ignore[misc]

    def _bridges_start_hub(self) -> None:
        """Start ``self.hub`` on ``self.io_loop`` (made by Tornado's ``setUp``)."""
        hub = Hub(frameworks=self.bridges_frameworks)
        self.io_loop.run_sync(hub.__aenter__)  # type: ignore[attr-defined]
        self.hub = hub

    def _bridges_stop_hub(self) -> None:
        """Run ``self.hub``'s stop sequence, before Tornado's ``tearDown`` closes the loop."""
        hub = self.__dict__.pop("hub", None)
        if hub is not None and self.io_loop.asyncio_loop.is_closed():  # type: ignore[attr-defined]
            # The test closed its own loop: nothing can run on it any more,
            # so the hub cannot run its stop sequence; Tornado's tearDown
            # reports the closed loop as it does without a hub.
            hub._abandon_closed_loop()
        elif hub is not None:
            self.io_loop.run_sync(  # type: ignore[attr-defined]
                functools.partial(hub.__aexit__, None, None, None)
            )


class HubAsyncTestCase(HubTestMixin, tornado.testing.AsyncTestCase):
    """``tornado.testing.AsyncTestCase`` with each test running on a hub."""


class HubAsyncHTTPTestCase(HubTestMixin, tornado.testing.AsyncHTTPTestCase):
    """``tornado.testing.AsyncHTTPTestCase`` with each test running on a hub."""


from ._adapter import TornadoAdapter  # noqa: E402 - it uses the classes above
from ._installer import install  # noqa: E402 - it subclasses the hub's IOLoop above
