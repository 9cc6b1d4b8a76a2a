"""The hub: one asyncio loop that every attached framework runs on.

The hub does four things the frameworks cannot do for each other:

* **Lifecycle.**  It attaches the adapters in a fixed order and, when it
  stops, runs the stop sequence in the reverse order with a bounded wait per
  stage, so that one stuck framework is reported instead of hanging the exit.
* **Ownership.**  asyncio keeps one reader and one writer per file descriptor
  and one handler per signal, and silently replaces an earlier one.  Adapters
  register through the hub, which refuses a second owner with an error that
  names both.
* **Legacy tasks.**  Tasks started on behalf of legacy code (a coroutine
  wrapped in a Deferred, a greenlet's awaitable) are tracked, so the stop
  sequence can cancel them at the right moment.
* **The error sink.**  An exception nobody awaited, in any framework's
  callback, is reported exactly once through the loop's exception handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import warnings
from types import TracebackType
from typing import Any, Awaitable, Callable, Mapping

from . import _adapter
from ._adapter import Adapter
from ._errors import (
    HubNotRunningError,
    HubStateError,
)
from ._introspect import describe_task, describe_waiter
from ._observe import SLOW_CALLBACK_ENV, AccountingArg, Observation, slow_callback_value
from ._registry import Registrations
from ._stop import StopStages

__all__ = [
    "DEFAULT_STOP_TIMEOUT",
    "SLOW_CALLBACK_ENV",
    "Hub",
    "current_hub",
    "describe_task",
    "describe_waiter",
    "slow_callback_value",
]

log = logging.getLogger("bridges")

DEFAULT_STOP_TIMEOUT = 5.0
"""Seconds each stage of the stop sequence may take before the hub moves on."""

_REPORTED = "__bridges_reported__"
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def _os_thread_ident() -> Callable[[], int]:
    """``threading.get_ident`` as the OS sees it.

    ``gevent.monkey.patch_all()`` and ``eventlet.monkey_patch()`` replace it
    with a per-greenlet id, which would make every greenlet look like another
    thread to the hub.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "get_ident")  # type: ignore[no-any-return]
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return patcher.original("_thread").get_ident  # type: ignore[no-any-return]
    return threading.get_ident


def current_hub() -> Hub:
    """The hub running on this thread's event loop.

    Raises :class:`bridges.HubNotRunningError` (a ``RuntimeError``) when there
    is none, e.g. when called from another thread or before ``bridges.run``.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    hub = _hubs.get(loop) if loop is not None else None
    if hub is None:
        raise HubNotRunningError(
            "no bridges hub is running in this thread. Call this from code that runs on "
            "the hub (inside bridges.run(...) or `async with bridges.Hub():`); from another "
            "thread, hand the call to the hub's loop with hub.loop.call_soon_threadsafe(...)."
        )
    return hub


class Hub(Registrations, StopStages, Observation):
    """One asyncio loop shared by every attached framework.

    ``bridges.run(main)`` creates one for you.  Inside a loop that is already
    running (a test, an application that owns its loop), use it directly::

        async with bridges.Hub(frameworks=["twisted"]) as hub:
            ...

    ``frameworks`` is ``"auto"`` (every installed framework), ``None`` (plain
    asyncio), or names from ``"asyncore"``, ``"gevent"``, ``"tornado"``,
    ``"twisted"`` and any third-party adapter registered in the
    ``bridges.adapters`` entry point group.  ``stop_timeout`` bounds each
    stage of the stop sequence.

    ``portals`` (on by default): with a green framework attached (gevent,
    eventlet), every task created on the hub's loop from then on runs its
    coroutine in a greenlet of its own, so that a gevent- or
    eventlet-blocking call inside the task suspends only that task.  It
    costs every task step two greenlet switches (docs/gevent.md and
    docs/eventlet.md, "Portals"); with ``portals=False`` such calls raise
    ``HubOwnsLoopError`` instead.

    ``accounting`` (on by default; ``BRIDGES_ACCOUNTING=0`` turns the default
    off) counts each framework's dispatches and estimates their loop time
    from a sample of them, for :meth:`stats`; ``accounting="exact"`` (or
    ``BRIDGES_ACCOUNTING=exact``) times every dispatch, at a cost.
    ``slow_callback`` (seconds; default: the ``BRIDGES_SLOW_CALLBACK``
    environment variable, else off) starts the
    blocking detector: a dispatch that holds the loop longer is reported
    while it blocks, naming its framework, the user's function and the stack
    (:class:`bridges.SlowCallbackError`, see docs/observability.md).
    """

    def __init__(
        self,
        frameworks: _adapter.FrameworksArg = "auto",
        *,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        portals: bool = True,
        accounting: AccountingArg = None,
        slow_callback: float | None = None,
    ) -> None:
        self._classes = _adapter.resolve(frameworks)
        self.stop_timeout = stop_timeout
        self.portals = portals
        self._init_observation(accounting, slow_callback)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._get_ident: Callable[[], int] = threading.get_ident
        self._attached: list[Adapter] = []
        self._by_name: dict[str, Adapter] = {}
        self._init_registrations()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._host: asyncio.Task[Any] | None = None
        self._stop_reason: str | None = None
        self._phase = "new"
        # Marks an exception as reported *by this hub*: some frameworks reuse one
        # exception object for the whole process (Twisted's CONNECTION_LOST), and
        # a later hub must still report it.
        self._report_token = object()

    # -- inspection ---------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop the hub runs on."""
        if self._loop is None:
            raise HubNotRunningError(
                "this hub has not started: enter it with `async with hub:` "
                "or let bridges.run() start it."
            )
        return self._loop

    @property
    def frameworks(self) -> tuple[str, ...]:
        """Names of the attached frameworks, in attach order."""
        return tuple(adapter.name for adapter in self._attached)

    def adapter(self, name: str) -> Adapter | None:
        """The attached adapter of the framework ``name`` (its per-hub state), or None."""
        return self._by_name.get(name)

    @property
    def adapters(self) -> tuple[Adapter, ...]:
        """The attached adapters, in attach order."""
        return tuple(self._attached)

    @property
    def state(self) -> Mapping[str, Adapter]:
        """Deprecated: use :meth:`adapter` (the adapters now hold their own typed state)."""
        warnings.warn(
            "Hub.state is deprecated; use hub.adapter(name), which returns the attached "
            "adapter (its per-hub state), or Adapter.current().",
            DeprecationWarning,
            stacklevel=2,
        )
        return {adapter.name: adapter for adapter in self._attached}

    @property
    def running(self) -> bool:
        return self._phase == "running"

    @property
    def stopping(self) -> bool:
        return self._phase == "stopping"

    @property
    def stop_reason(self) -> str | None:
        """Why :meth:`request_stop` was called, or None if it was not."""
        return self._stop_reason

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """Tasks started for legacy code that have not finished yet."""
        return [task for task in self._tasks if not task.done()]

    def __repr__(self) -> str:
        return f"<bridges.Hub {self._phase} frameworks={list(self.frameworks)}>"

    # -- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> Hub:
        if self._phase != "new":
            raise HubStateError(
                f"this hub is {self._phase}; a Hub starts once. Make a new bridges.Hub()."
            )
        loop = asyncio.get_running_loop()
        if loop in _hubs:
            raise HubStateError(
                "a bridges hub is already running on this event loop; one loop has one hub. "
                "Use bridges.current_hub() to reach it instead of starting another."
            )
        self._loop = loop
        self._get_ident = _os_thread_ident()
        self._thread_id = self._get_ident()
        self._host = asyncio.current_task()
        _hubs[loop] = self
        self._phase = "running"
        self._start_accounting()
        try:
            for cls in self._classes:
                adapter = cls(self)
                outcome = adapter.attach()
                self._attached.append(adapter)
                self._by_name[adapter.name] = adapter
                if outcome is not None:
                    await outcome
                log.debug("bridges: attached %s", adapter.name)
            self._start_observing()
        except BaseException:
            await self._stop_shielded()
            self._withdraw_own_cancel()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        interruption = await self._stop_shielded()
        own_cancel = self._withdraw_own_cancel()
        # A stopped hub is kept alive by reference cycles until a full
        # collection; without its host task, asyncio.all_tasks() on later
        # loops does not walk every finished host task still waiting for it.
        self._host = None
        if isinstance(exc, asyncio.CancelledError):
            return own_cancel  # our stop request: swallow it, so run() returns None
        if interruption is not None and not own_cancel:
            # Someone else's cancellation arrived while we stopped: pass on that
            # very object (AnyIO's cancel scopes recognise their own by it).
            raise interruption
        # Either nothing was cancelled, or our own stop request arrived while main
        # was already leaving with its result or exception: keep that outcome.
        return False

    def stats(self) -> dict[str, Any]:
        """Who has been holding the loop: per-framework counts and loop time, plain data.

        ``{"frameworks": {name: {"count": int | None, "seconds": float}},
        "slowest": [{"framework", "function", "seconds"}, ...],
        "wall_seconds", "busy_seconds", "loop_passes", "stalls", "slow_callback"}``:
        ``seconds`` is loop time spent in that framework's dispatches (its own,
        without what other frameworks ran inside them); ``"asyncio"`` is the rest
        of the loop's busy time (task steps and callbacks no other framework
        claimed); ``slowest`` the slowest single dispatches, by the user's
        qualified function name; ``stalls`` how many dispatches the blocking
        detector reported.  Empty figures when accounting is off.  Readable from
        any thread, and after the hub stopped (the figures of its run).
        """
        return self._stats()

    def request_stop(self, reason: str) -> None:
        """Stop the hub from inside: cancel the code running in it, then run the stop sequence.

        This is what SIGTERM, SIGINT and Twisted's ``reactor.stop()`` do.  The
        task that entered the hub is cancelled; ``async with Hub()`` swallows
        that one cancellation when it exits, so ``bridges.run`` returns None.
        Safe to call more than once and from any thread.
        """
        if self._loop is not None and self._get_ident() != self._thread_id:
            self._loop.call_soon_threadsafe(self.request_stop, reason)
            return
        if self._stop_reason is not None or self._phase != "running":
            return
        self._stop_reason = reason
        log.debug("bridges: stop requested by %s", reason)
        if self._host is not None and not self._host.done():
            self._host.cancel(f"bridges: hub stop requested by {reason}")

    def _withdraw_own_cancel(self) -> bool:
        """Take back the cancellation :meth:`request_stop` sent; True if it was the only one."""
        if self._stop_reason is None or self._host is None:
            return False
        if sys.version_info >= (3, 11):
            # If someone else cancelled the host task too (a timeout around the
            # hub), theirs stays counted and must propagate.
            return self._host.uncancel() == 0
        return True

    async def _stop_shielded(self) -> asyncio.CancelledError | None:
        """Run the stop sequence to its end; return the cancellation that arrived meanwhile.

        The stop sequence runs in its own task and is shielded: a caller that is
        cancelled again while we stop (AnyIO's cancel scopes re-cancel on every
        loop pass) must not abandon the frameworks half-stopped.  Every stage is
        bounded, so this wait is bounded too.
        """
        if self._phase in ("stopping", "stopped"):
            return None
        self._phase = "stopping"
        stopper = self.loop.create_task(self._stop_sequence())
        interruption = None
        while not stopper.done():
            try:
                await asyncio.shield(stopper)
            except asyncio.CancelledError as cancelled:
                interruption = cancelled
        return interruption

    async def _stop_sequence(self) -> None:
        try:
            for stage in self._stop_stages():
                log.debug("bridges: stop stage %s", stage.name)
                try:
                    outcome = stage.begin()
                    if outcome is not None:
                        await self._bounded(stage, outcome)
                except Exception as exc:  # noqa: BLE001 - one failing stage must not skip the rest
                    self.report(exc, f"bridges: stop stage {stage.name!r} failed")
        finally:
            # Tasks started while the later stages ran (a finally block of a
            # cancelled task may spawn one) must not outlive the hub.
            for task in self.pending_tasks():
                task.cancel()
            self._stop_observing()
            self._release_registrations()
            self._attached.clear()
            self._by_name.clear()
            _hubs.pop(self.loop, None)
            self._phase = "stopped"
            log.debug("bridges: stopped")

    def _abandon_closed_loop(self) -> None:
        """Forget a hub whose loop was closed under it: no stop sequence can run there.

        The adapters' state stays for them to find: an adapter whose
        framework outlives the loop (Twisted's process-global reactor) takes
        it back from a closed hub when it next attaches.
        """
        if self._loop is None or not self._loop.is_closed():
            raise HubStateError(
                "only a hub whose loop is closed can be abandoned; stop this one by "
                "leaving `async with hub:`."
            )
        self._attached.clear()
        self._tasks.clear()
        _hubs.pop(self._loop, None)
        self._phase = "stopped"

    # -- legacy tasks -------------------------------------------------------

    def spawn(self, aw: Awaitable[Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``aw`` as a task that the hub cancels when it stops.

        Adapters use this for work they start on behalf of legacy code.  The
        task runs in a copy of the caller's context, so ``contextvars`` set by
        the caller are visible inside.
        """
        task = asyncio.ensure_future(aw, loop=self.loop)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the error sink -----------------------------------------------------

    def report(
        self, exc: BaseException | None, message: str, *, logged: bool = False, **context: Any
    ) -> None:
        """Report an error nobody handled, once, through the loop's exception handler.

        Adapters route their framework's "unhandled error" paths here (Twisted's
        unhandled Failures, gevent's ``handle_error``, Tornado's callback
        errors).  The same exception object is reported only the first time,
        however many paths it takes.  Callable from any thread.

        ``logged``: the framework's own logger has logged the error too, where
        its users look for it (Tornado's ``app_log``).  Then a loop without an
        exception handler of the application's is not asked: asyncio's default
        handler would only log the same error a second time.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            if not logged:
                log.error("%s", message, exc_info=exc)
            return
        if self._get_ident() != self._thread_id:
            loop.call_soon_threadsafe(lambda: self.report(exc, message, logged=logged, **context))
            return
        if exc is not None:
            if getattr(exc, _REPORTED, None) is self._report_token:
                return
            with contextlib.suppress(AttributeError):  # exceptions with __slots__
                setattr(exc, _REPORTED, self._report_token)
        if logged and loop.get_exception_handler() is None:
            return
        payload: dict[str, Any] = {"message": message, "hub": self, **context}
        if exc is not None:
            payload["exception"] = exc
        loop.call_exception_handler(payload)
