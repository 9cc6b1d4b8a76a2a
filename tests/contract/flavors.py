"""The flavors of the contract matrix: how each framework makes, awaits and cancels.

A flavor plays two roles in a pair ``caller->callee``:

* **callee**: it makes a native primitive that resolves with a value
  (:meth:`Flavor.resolving`), fails with an exception raised inside the
  flavor's own code (:meth:`Flavor.failing`), or never resolves and notes
  its own native cancellation (:meth:`Flavor.pending`); and it can cancel
  that primitive the way a third party of its framework would
  (:meth:`Flavor.cancel_natively`).
* **caller**: it runs code of its own flavor that awaits the callee's
  primitive with the flavor's documented bridge (``await bridges.awaitable``,
  ``yield bt.deferred(...)``, ``yield btn.future(...)``, ``bg.wait``, ...)
  and can cancel that wait from its own side (:meth:`Flavor.cancel_call`).

A :class:`Trace` records what each side saw, so the tests assert on facts
rather than on timing.  Primitives are made *inside* the caller's code (the
``make`` callable), so the caller's ``contextvars`` and thread are the ones
the callee inherits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import socket
import sys
import threading
import warnings
from typing import Any, Callable, ClassVar, Generator

import bridges

CTX: contextvars.ContextVar[object] = contextvars.ContextVar("contract_ctx", default=None)
"""The variable the caller sets and the callee reads (the *context* row)."""

CANCEL_MESSAGE = "contract: cancelled by the awaiting side"
"""What an asyncio caller cancels with; seeing it proves the CancelledError is the original."""

Make = Callable[[], Any]


class Trace:
    """What the two sides of one call saw."""

    def __init__(self, ctx_value: object = None) -> None:
        self.ctx_value = ctx_value
        self.caller_threads: list[int] = []
        self.callee_threads: list[int] = []
        self.callee_ctx: list[object] = []
        self.caller_caught: BaseException | None = None
        self.started = False
        self.callee_cancelled = False
        self.native: Any = None
        self.inner: Any = None

    def enter(self) -> None:
        """The caller's code starts: note its thread, set the context variable."""
        self.caller_threads.append(threading.get_ident())
        if self.ctx_value is not None:
            CTX.set(self.ctx_value)

    def resumed(self) -> None:
        """The caller's code continues after its await."""
        self.caller_threads.append(threading.get_ident())

    def caught(self, exc: BaseException) -> None:
        self.caller_caught = exc
        self.caller_threads.append(threading.get_ident())

    def callee_ran(self) -> None:
        """The callee's own code runs: note its thread and the context it sees."""
        self.callee_threads.append(threading.get_ident())
        self.callee_ctx.append(CTX.get())


class Flavor:
    """One framework's way of making, awaiting and cancelling."""

    name: ClassVar[str]
    frameworks: ClassVar[tuple[str, ...]] = ()
    module: ClassVar[str | None] = None
    """The adapter module the flavor needs (None: the hub core is enough)."""
    callee_thread_is_hub = True
    """False when the callee's work runs in a worker thread by design (concurrent.futures)."""
    caller_thread_is_hub = True
    cancelled_errors: ClassVar[tuple[type[BaseException], ...]] = (asyncio.CancelledError,)
    """What the caller's code sees when the primitive it awaits was cancelled natively."""
    own_cancel_errors: ClassVar[tuple[type[BaseException], ...]] = (asyncio.CancelledError,)
    """What the caller's code sees when its own side cancels its wait."""

    def unavailable(self) -> str | None:
        """Why the flavor cannot run here, or None."""
        if self.module is None:
            return None
        try:
            importlib.import_module(self.module)
        except Exception as exc:  # noqa: BLE001 - any import failure makes the flavor skip
            return f"{self.module} cannot be imported yet ({type(exc).__name__}: {exc})"
        return None

    # -- callee -----------------------------------------------------------

    def resolving(self, value: object, trace: Trace) -> Any:
        """A primitive whose own code runs a loop pass later and resolves with ``value``."""
        raise NotImplementedError

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        """A primitive whose own code, in ``fail_in_<name>()``, raises ``exc``."""
        raise NotImplementedError

    def pending(self, trace: Trace) -> Any:
        """A primitive that never resolves; notes its native cancellation in ``trace``."""
        raise NotImplementedError

    def cancel_natively(self, trace: Trace) -> None:
        """Cancel ``pending``'s primitive the way a third party of this framework would."""
        raise NotImplementedError

    # -- caller -----------------------------------------------------------

    def call(self, trace: Trace, make: Make) -> Any:
        """Start caller code that awaits ``make()``; return its native handle."""
        raise NotImplementedError

    def outcome(self, handle: Any) -> Any:
        """What the test (asyncio) awaits for the caller's outcome."""
        return bridges.awaitable(handle)

    def can_cancel_call(self, trace: Trace) -> bool:
        """Whether the caller's code has reached the point where its own side can cancel."""
        return True

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        """Cancel the caller's wait from the caller's own side, natively."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


# -- asyncio ------------------------------------------------------------------------


class AsyncioFlavor(Flavor):
    """Coroutines and tasks: the primitive is a coroutine (a task when it must be cancellable)."""

    name = "asyncio"

    def resolving(self, value: object, trace: Trace) -> Any:
        async def resolve_in_asyncio() -> object:
            await asyncio.sleep(0)
            trace.callee_ran()
            return value

        return resolve_in_asyncio()

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        async def fail_in_asyncio() -> object:
            await asyncio.sleep(0)
            trace.callee_ran()
            raise exc

        return fail_in_asyncio()

    def pending(self, trace: Trace) -> Any:
        async def pend_in_asyncio() -> None:
            trace.started = True
            await asyncio.get_running_loop().create_future()

        # The task's own cancellation is the native one; a task cancelled before its
        # first step never runs its body, so its code could not note it.
        task = asyncio.ensure_future(pend_in_asyncio())
        task.add_done_callback(lambda t: setattr(trace, "callee_cancelled", t.cancelled()))
        trace.native = task
        return task

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.cancel()

    def call(self, trace: Trace, make: Make) -> Any:
        async def call_from_asyncio() -> object:
            trace.enter()
            try:
                value = await bridges.awaitable(make())
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        return asyncio.ensure_future(call_from_asyncio())

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        handle.cancel(CANCEL_MESSAGE)


# -- Tulip-era generator coroutines --------------------------------------------------


def _next_pass() -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(lambda: fut.done() or fut.set_result(None))
    return fut


class GeneratorFlavor(Flavor):
    """``yield from`` coroutines as Python 3.4 wrote them, driven by ``bridges.awaitable``.

    Native cancellation of a generator is the cancellation of the future it
    is blocked on (``yield from fut`` raises ``CancelledError`` inside it);
    its caller cancels the task that drives it, as Tulip code did.
    """

    name = "generator"

    def resolving(self, value: object, trace: Trace) -> Any:
        def resolve_in_generator() -> Generator[Any, Any, object]:
            yield from _next_pass()
            trace.callee_ran()
            return value

        return resolve_in_generator()

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        def fail_in_generator() -> Generator[Any, Any, object]:
            yield from _next_pass()
            trace.callee_ran()
            raise exc

        return fail_in_generator()

    def pending(self, trace: Trace) -> Any:
        trace.native = asyncio.get_running_loop().create_future()

        def pend_in_generator() -> Generator[Any, Any, None]:
            trace.started = True
            try:
                yield from trace.native
            except asyncio.CancelledError:
                trace.callee_cancelled = True
                raise

        return pend_in_generator()

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.cancel()

    def call(self, trace: Trace, make: Make) -> Any:
        def call_from_generator() -> Generator[Any, Any, object]:
            trace.enter()
            try:
                value = yield make()
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        return asyncio.ensure_future(bridges.awaitable(call_from_generator()))

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        handle.cancel(CANCEL_MESSAGE)


# -- concurrent.futures ----------------------------------------------------------------

_pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}


def worker_pool(role: str) -> concurrent.futures.ThreadPoolExecutor:
    """The suite's pools: the concurrent.futures flavor's work runs in real threads.

    Callers and callees get separate pools: callers block their worker until
    the callee is done, so sharing one pool could starve the callees.
    """
    if role not in _pools:
        _pools[role] = concurrent.futures.ThreadPoolExecutor(
            8, thread_name_prefix=f"contract-{role}"
        )
    return _pools[role]


class ConcurrentFlavor(Flavor):
    """``concurrent.futures.Future``: completed by worker threads, waited on by worker threads.

    As callee, the work is submitted the way ``asyncio.to_thread`` submits it
    (in a copy of the caller's context): concurrent.futures itself carries no
    context, so that is the caller's job, and the row checks the bridge keeps it.
    As caller, a worker thread hands the call to the hub with
    ``asyncio.run_coroutine_threadsafe`` and blocks on the returned future;
    its own-side cancel is ``future.cancel()``.
    """

    name = "concurrent"
    callee_thread_is_hub = False
    caller_thread_is_hub = False
    cancelled_errors = (concurrent.futures.CancelledError, asyncio.CancelledError)
    own_cancel_errors = (concurrent.futures.CancelledError,)

    def resolving(self, value: object, trace: Trace) -> Any:
        def resolve_in_concurrent() -> object:
            trace.callee_ran()
            return value

        return worker_pool("callee").submit(contextvars.copy_context().run, resolve_in_concurrent)

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        def fail_in_concurrent() -> object:
            trace.callee_ran()
            raise exc

        return worker_pool("callee").submit(contextvars.copy_context().run, fail_in_concurrent)

    def pending(self, trace: Trace) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def note(done: concurrent.futures.Future[Any]) -> None:
            trace.callee_cancelled = done.cancelled()

        future.add_done_callback(note)
        trace.native = future
        trace.started = True
        return future

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.cancel()

    def call(self, trace: Trace, make: Make) -> Any:
        loop = asyncio.get_running_loop()

        async def on_the_hub() -> object:
            return await bridges.awaitable(make())

        def call_from_thread() -> object:
            trace.enter()
            future = asyncio.run_coroutine_threadsafe(on_the_hub(), loop)
            trace.inner = future
            try:
                value = future.result(timeout=60)
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        # A fresh context, so that what the thread sets never leaks into the pool's next job.
        return loop.run_in_executor(
            worker_pool("caller"), contextvars.Context().run, call_from_thread
        )

    def can_cancel_call(self, trace: Trace) -> bool:
        return trace.inner is not None

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        trace.inner.cancel()


# -- Twisted ---------------------------------------------------------------------------


class TwistedFlavor(Flavor):
    """Deferreds: ``inlineCallbacks`` code on the hub's reactor.

    Native cancel is ``Deferred.cancel()`` (the canceller runs); a caller's
    own-side cancel cancels its ``inlineCallbacks`` Deferred, which cancels
    the Deferred it waits on, and its code sees ``defer.CancelledError``.
    """

    name = "twisted"
    frameworks = ("twisted",)
    module = "bridges.twisted"

    @property
    def cancelled_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        from twisted.internet import defer

        return (defer.CancelledError,)

    own_cancel_errors = cancelled_errors  # type: ignore[assignment]

    def resolving(self, value: object, trace: Trace) -> Any:
        from twisted.internet import defer, task

        from bridges import twisted as bt

        @defer.inlineCallbacks
        def resolve_in_twisted() -> Generator[Any, Any, object]:
            yield task.deferLater(bt.get_reactor(), 0, lambda: None)
            trace.callee_ran()
            return value

        return resolve_in_twisted()

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        from twisted.internet import defer, task

        from bridges import twisted as bt

        @defer.inlineCallbacks
        def fail_in_twisted() -> Generator[Any, Any, object]:
            yield task.deferLater(bt.get_reactor(), 0, lambda: None)
            trace.callee_ran()
            raise exc

        return fail_in_twisted()

    def pending(self, trace: Trace) -> Any:
        from twisted.internet import defer

        def canceller(_: Any) -> None:
            trace.callee_cancelled = True

        trace.native = defer.Deferred(canceller)
        trace.started = True
        return trace.native

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.cancel()

    def call(self, trace: Trace, make: Make) -> Any:
        from twisted.internet import defer

        from bridges import twisted as bt

        @defer.inlineCallbacks
        def call_from_twisted() -> Generator[Any, Any, object]:
            trace.enter()
            try:
                value = yield bt.deferred(make())
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        return call_from_twisted()

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        handle.cancel()


# -- Tornado ---------------------------------------------------------------------------


class TornadoFlavor(Flavor):
    """``gen.coroutine`` code on the hub's IOLoop.

    Tornado cancels by cancelling a future: natively, the coroutine's result
    future is cancelled by a third party; a caller's own-side cancel is
    cancelling the future it yielded (made with ``btn.future``).
    """

    name = "tornado"
    frameworks = ("tornado",)
    module = "bridges.tornado"

    def resolving(self, value: object, trace: Trace) -> Any:
        from tornado import gen

        @gen.coroutine
        def resolve_in_tornado() -> Generator[Any, Any, object]:
            yield gen.moment
            trace.callee_ran()
            return value

        return resolve_in_tornado()

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        from tornado import gen

        @gen.coroutine
        def fail_in_tornado() -> Generator[Any, Any, object]:
            yield gen.moment
            trace.callee_ran()
            raise exc

        return fail_in_tornado()

    def pending(self, trace: Trace) -> Any:
        from tornado import gen
        from tornado.concurrent import Future

        @gen.coroutine
        def pend_in_tornado() -> Generator[Any, Any, None]:
            trace.started = True
            yield Future()

        result = pend_in_tornado()
        result.add_done_callback(lambda f: setattr(trace, "callee_cancelled", f.cancelled()))
        trace.native = result
        return result

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.cancel()

    def call(self, trace: Trace, make: Make) -> Any:
        from tornado import gen

        from bridges import tornado as btn

        @gen.coroutine
        def call_from_tornado() -> Generator[Any, Any, object]:
            trace.enter()
            trace.inner = btn.future(make())
            try:
                value = yield trace.inner
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        return call_from_tornado()

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        trace.inner.cancel()


# -- gevent ----------------------------------------------------------------------------


class GeventFlavor(Flavor):
    """Greenlets: native cancel is ``greenlet.kill()``; a caller blocks in ``bg.wait``."""

    name = "gevent"
    frameworks = ("gevent",)
    module = "bridges.gevent"

    @property
    def cancelled_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        from greenlet import GreenletExit

        return (asyncio.CancelledError, GreenletExit)

    @property
    def own_cancel_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        from greenlet import GreenletExit

        return (GreenletExit,)

    def resolving(self, value: object, trace: Trace) -> Any:
        import gevent

        def resolve_in_gevent() -> object:
            gevent.sleep(0)
            trace.callee_ran()
            return value

        return gevent.spawn(resolve_in_gevent)

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        import gevent

        def fail_in_gevent() -> object:
            gevent.sleep(0)
            trace.callee_ran()
            raise exc

        return gevent.spawn(fail_in_gevent)

    def pending(self, trace: Trace) -> Any:
        import gevent
        import gevent.event
        from greenlet import GreenletExit

        def pend_in_gevent() -> None:
            trace.started = True
            try:
                gevent.event.Event().wait()
            except GreenletExit:
                trace.callee_cancelled = True
                raise

        trace.native = gevent.spawn(pend_in_gevent)
        return trace.native

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.kill(block=False)

    def call(self, trace: Trace, make: Make) -> Any:
        import gevent

        from bridges import gevent as bg

        def call_from_gevent() -> object:
            trace.enter()
            try:
                value = bg.wait(make())
            except BaseException as exc:
                trace.caught(exc)
                raise
            trace.resumed()
            return value

        return gevent.spawn(call_from_gevent)

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        handle.kill(block=False)


# -- asyncore --------------------------------------------------------------------------


def _asyncore() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
    return asyncore


class AsyncoreFlavor(Flavor):
    """Dispatchers on a socket pair, driven by the hub.

    asyncore has no future of its own, so a primitive is a *request*: a
    dispatcher whose ``handle_read`` produces the outcome when its peer sends
    a byte (an exception raised there goes through asyncore's
    ``handle_error``), awaited with ``ba.closed``.  The peer hanging up before
    an outcome is the native cancellation (the awaiting side sees
    ``CancelledError``); cancelling the wait closes the dispatcher.  As
    caller, a dispatcher starts the call from ``handle_read`` with
    ``asyncio.ensure_future(bridges.awaitable(...))``, settles its own
    outcome from a done callback, and closing it is its own-side cancel.
    """

    name = "asyncore"
    frameworks = ("asyncore",)
    module = "bridges.asyncore"

    def _request(self, produce: Callable[[], object], trace: Trace, send: bool) -> Any:
        from bridges import asyncore as ba

        asyncore = _asyncore()
        ours, peer = socket.socketpair()

        class Request(asyncore.dispatcher):  # type: ignore[misc, name-defined]
            outcome: tuple[str, Any] | None = None

            def writable(self) -> bool:
                return False

            def handle_read(self) -> None:
                if self.recv(1):
                    self.outcome = ("result", produce())
                    self.close()

            def handle_error(self) -> None:
                self.outcome = ("error", sys.exc_info()[1])
                self.close()

            def handle_close(self) -> None:
                self.close()

        request = Request(ours)
        trace.native = peer
        if send:
            asyncio.get_running_loop().call_soon(peer.send, b"!")

        async def request_in_asyncore() -> object:
            # Started only once the coroutine runs: a task cancelled before its
            # first step never runs its body, so there is nothing to cancel yet.
            trace.started = True
            try:
                await ba.closed(request)
            except asyncio.CancelledError:
                trace.callee_cancelled = True
                request.close()
                raise
            finally:
                peer.close()
            if request.outcome is None:
                # Closed without an outcome (the peer hung up, the hub closed it at stop):
                # asyncore's native cancellation.
                trace.callee_cancelled = True
                raise asyncio.CancelledError("the asyncore request closed before an outcome")
            kind, payload = request.outcome
            if kind == "error":
                raise payload
            return payload

        return request_in_asyncore()

    def resolving(self, value: object, trace: Trace) -> Any:
        def resolve_in_asyncore() -> object:
            trace.callee_ran()
            return value

        return self._request(resolve_in_asyncore, trace, send=True)

    def failing(self, exc: BaseException, trace: Trace) -> Any:
        def fail_in_asyncore() -> object:
            trace.callee_ran()
            raise exc

        return self._request(fail_in_asyncore, trace, send=True)

    def pending(self, trace: Trace) -> Any:
        return self._request(lambda: None, trace, send=False)

    def cancel_natively(self, trace: Trace) -> None:
        trace.native.close()

    def call(self, trace: Trace, make: Make) -> Any:
        asyncore = _asyncore()
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        settled: asyncio.Future[Any] = loop.create_future()

        class Caller(asyncore.dispatcher):  # type: ignore[misc, name-defined]
            def writable(self) -> bool:
                return False

            def handle_read(self) -> None:
                if not self.recv(1):
                    return
                trace.enter()
                trace.inner = asyncio.ensure_future(bridges.awaitable(make()))
                trace.inner.add_done_callback(self.settle)

            def settle(self, inner: asyncio.Future[Any]) -> None:
                if inner.cancelled():
                    try:
                        inner.result()
                    except asyncio.CancelledError as exc:
                        trace.caught(exc)
                    settled.cancel()
                elif inner.exception() is not None:
                    trace.caught(inner.exception())  # type: ignore[arg-type]
                    settled.set_exception(inner.exception())  # type: ignore[arg-type]
                else:
                    trace.resumed()
                    settled.set_result(inner.result())
                self.close()

            def close(self) -> None:
                super().close()
                peer.close()
                if trace.inner is not None and not trace.inner.done():
                    trace.inner.cancel()

            def handle_close(self) -> None:
                self.close()

        caller = Caller(ours)
        caller.settled = settled
        loop.call_soon(peer.send, b"!")
        return caller

    def outcome(self, handle: Any) -> Any:
        return handle.settled

    def can_cancel_call(self, trace: Trace) -> bool:
        return trace.inner is not None

    def cancel_call(self, handle: Any, trace: Trace) -> None:
        handle.close()


FLAVORS: tuple[Flavor, ...] = (
    AsyncioFlavor(),
    TwistedFlavor(),
    TornadoFlavor(),
    GeventFlavor(),
    AsyncoreFlavor(),
    ConcurrentFlavor(),
    GeneratorFlavor(),
)
BY_NAME = {flavor.name: flavor for flavor in FLAVORS}
