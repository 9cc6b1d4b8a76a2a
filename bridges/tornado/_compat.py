"""Every private detail of Tornado the adapter relies on, and the patches it applies.

Each function touches one detail.  Checked on Tornado 6.2, 6.3.3, 6.4.2, 6.5.2
and 6.6.1; tests/test_tornado_compat.py tests the *behaviour* each relies on,
and fails if one of them changes.

The hub's IOLoop (``bridges.tornado._HubIOLoop``) also overrides two private
methods of ``BaseAsyncIOLoop``, its dispatch points into user code, to
account their loop time: ``_run_callback`` and ``_handle_events``
(tests/test_observe_accounting.py fails if Tornado stops calling them).

The patches (``gen.Runner``'s cancellation fixes, ``convert_yielded``'s
take-over) are applied when the first hub with Tornado attaches and removed
when the last one detaches: importing ``bridges.tornado`` changes nothing in
Tornado, and after the hubs stop, Tornado behaves exactly as before.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import threading
import types
from typing import Any, Optional

import tornado
from tornado import gen
from tornado.concurrent import future_set_exc_info, future_set_result_unless_cancelled
from tornado.ioloop import IOLoop

from .. import _convert

__all__ = [
    "RESOLVES_CANCELLED_YIELDS",
    "bound_ioloop",
    "patch",
    "release_handlers",
    "swap_selector",
    "unbind_ioloop",
    "unpatch",
]


# -- the IOLoop ---------------------------------------------------------------------


def bound_ioloop(loop: asyncio.AbstractEventLoop) -> Optional[IOLoop]:
    """The IOLoop Tornado has bound to ``loop``, without creating one.

    ``IOLoop.current(instance=False)`` is documented as deprecated, and
    ``IOLoop.current()`` would create one, so read Tornado's map directly
    (``IOLoop._ioloop_for_asyncio``).
    """
    return IOLoop._ioloop_for_asyncio.get(loop)


def unbind_ioloop(ioloop: IOLoop) -> None:
    """Forget ``ioloop``'s binding, as ``IOLoop.close()`` does, but leave the loop open."""
    loop = ioloop.asyncio_loop  # type: ignore[attr-defined]
    if IOLoop._ioloop_for_asyncio.get(loop) is ioloop:
        del IOLoop._ioloop_for_asyncio[loop]


def release_handlers(ioloop: IOLoop, *, all_fds: bool) -> None:
    """Remove every fd handler of ``ioloop`` (closing the fds if ``all_fds``), as
    ``BaseAsyncIOLoop.close`` does before it closes the asyncio loop (``handlers``)."""
    for fd in list(ioloop.handlers):  # type: ignore[attr-defined]
        fileobj, _ = ioloop.handlers[fd]  # type: ignore[attr-defined]
        ioloop.remove_handler(fd)
        if all_fds:
            ioloop.close_fd(fileobj)


def swap_selector(ioloop: IOLoop, selector: Any) -> Any:
    """Replace the object Tornado registers fds with (``selector_loop``); return the previous."""
    previous = ioloop.selector_loop  # type: ignore[attr-defined]
    ioloop.selector_loop = selector  # type: ignore[attr-defined]
    return previous


# -- gen.coroutine cancellation -------------------------------------------------------

RESOLVES_CANCELLED_YIELDS = tornado.version_info >= (6, 6)
"""Whether this Tornado's own ``gen.coroutine`` resolves when a yielded future is cancelled."""


def _run_resolving_cancellation(self: Any) -> None:
    """``gen.Runner.run`` as Tornado 6.6 has it, installed on Tornado 6.2-6.5 while a hub runs.

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


_tornados_run = gen.Runner.run
_tornados_handle_yield = gen.Runner.handle_yield
_HOOKED = "_bridges_cancel_hook"


def _handle_yield_propagating_cancel(self: Any, yielded: Any) -> bool:
    """``gen.Runner.handle_yield``, and: cancelling the coroutine's future cancels what it waits on.

    Tornado has no task to cancel: cancelling a ``@gen.coroutine``'s future
    leaves the generator running, and whatever it yielded (a Deferred, a
    concurrent future, an inner coroutine) pending forever; when the hub stops
    and cancels the task awaiting such a coroutine, nothing below it learns.
    Like ``asyncio.Task.cancel``, we cancel the future the generator is
    waiting on; the runner then throws ``CancelledError`` into the generator
    at its ``yield`` (with the 3537 fix on Tornado < 6.6), which may handle it.

    The hook goes on the first yield rather than in ``Runner.__init__``: a
    wrapper of ``__init__`` would keep the coroutine's future (and so its
    exception's traceback and every local of the generator) alive in its
    frame, which Tornado's own ``__init__`` clears on purpose.
    """
    result_future = self.result_future
    if result_future is not None and not self.finished and _HOOKED not in self.__dict__:
        self.__dict__[_HOOKED] = True
        result_future.add_done_callback(functools.partial(_cancel_awaited, self))
    result_future = None
    return _tornados_handle_yield(self, yielded)  # type: ignore[no-any-return]


def _cancel_awaited(runner: Any, result_future: asyncio.Future[Any]) -> None:
    if not result_future.cancelled() or runner.finished:
        return
    awaited = runner.future
    if awaited is not None and not awaited.done():
        awaited.cancel()


# -- convert_yielded: yield anything the hub knows --------------------------------

_displaced: Any = None
"""A singledispatch function holding the ``convert_yielded`` implementations we took
over (Tornado's default for ``object``, and e.g. ``tornado.platform.twisted``'s for
``Deferred``), so that types bridges does not know keep Tornado's behaviour."""

_tornado_default: Any = gen.convert_yielded.registry[object]
"""Tornado's own ``convert_yielded`` implementation (the one registered for ``object``)."""

_TORNADOS_OWN = frozenset(
    {asyncio.Future, asyncio.Task, types.CoroutineType, list, dict, type(None), type(gen.moment)}
)
"""Types Tornado converts itself on every request (futures, coroutines, ``yield [...]``,
``gen.moment``): they go straight to Tornado's implementation, skipping two
registry look-ups on the hot path.  Exact types only; subclasses take the full path."""


_BRIDGED: set[type] = set()
"""Types known to have a converter in the hub's registry: a registration is never taken
back (a later one for the same type only replaces it), so a type is looked up once,
not on every ``yield``.  Types without one are asked each time (one may be registered)."""


def convert_yielded(yielded: Any) -> Any:
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
    if cls in _BRIDGED:
        return _convert.to_future(yielded)
    if _convert.has_converter(cls):
        _BRIDGED.add(cls)
        return _convert.to_future(yielded)
    try:
        return _displaced.dispatch(cls)(yielded)
    except gen.BadYieldError:
        if inspect.isgenerator(yielded):
            return _convert.to_future(yielded)
        raise


def _claim_convert_yielded(twisted_available: bool) -> None:
    """Make :func:`convert_yielded` the implementation for every type Tornado's registry has.

    ``convert_yielded`` is a ``singledispatch`` function, and the most specific
    registration wins: ``tornado.platform.twisted`` registers ``Deferred`` when
    it is first imported, which would bypass the hub for Deferreds (losing
    cancellation).  So we import it now, while we can still come after it,
    then take over each registration, keeping the displaced function for the
    types the hub does not know.  Run at each attach (a library may have
    registered a type since).
    """
    global _displaced
    if twisted_available:
        import tornado.platform.twisted  # noqa: F401 - registers its Deferred converter now
    registry = gen.convert_yielded.registry
    if _displaced is None:
        _displaced = functools.singledispatch(_tornado_default)
    for cls, implementation in list(registry.items()):
        if implementation is convert_yielded:
            continue
        if cls is not object:
            _displaced.register(cls, implementation)
        gen.convert_yielded.register(cls, convert_yielded)


def _restore_convert_yielded() -> None:
    """Give every registration we took over back to the implementation we displaced."""
    global _displaced
    if _displaced is None:
        return
    for cls, implementation in list(gen.convert_yielded.registry.items()):
        if implementation is convert_yielded:
            original = _tornado_default if cls is object else _displaced.registry[cls]
            gen.convert_yielded.register(cls, original)
    _displaced = None


# -- applying and removing the patches ------------------------------------------------

_users = 0
_lock = threading.Lock()


def patch(twisted_available: bool) -> None:
    """Apply the patches for one more attached hub (the first one applies them)."""
    global _users
    with _lock:
        if _users == 0:
            gen.Runner.handle_yield = _handle_yield_propagating_cancel  # type: ignore[method-assign]
            if not RESOLVES_CANCELLED_YIELDS:
                gen.Runner.run = _run_resolving_cancellation  # type: ignore[method-assign]
        _users += 1
        # every attach: a library may have registered a convert_yielded type since
        _claim_convert_yielded(twisted_available)


def unpatch() -> None:
    """One hub fewer; the last one removes every patch, leaving Tornado as it found it."""
    global _users
    with _lock:
        _users -= 1
        if _users > 0:
            return
        gen.Runner.handle_yield = _tornados_handle_yield  # type: ignore[method-assign]
        gen.Runner.run = _tornados_run  # type: ignore[method-assign]
        _restore_convert_yielded()


def patched() -> bool:
    """Whether the patches are applied now (some hub with Tornado attached runs)."""
    return _users > 0
