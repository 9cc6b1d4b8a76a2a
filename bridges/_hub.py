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
import os
import sys
import threading
import warnings
from types import TracebackType
from typing import Any, Awaitable, Callable, Iterator, Mapping, NamedTuple

from . import _adapter
from ._accounting import Accounting, qualified_name
from ._adapter import Adapter
from ._errors import (
    BridgeError,
    FdConflictError,
    HubNotRunningError,
    HubStateError,
    SignalConflictError,
    SlowCallbackError,
    StopTimeoutError,
    UsageError,
)
from ._introspect import await_chain
from ._watchdog import Watchdog

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

SLOW_CALLBACK_ENV = "BRIDGES_SLOW_CALLBACK"
"""Environment variable: the blocking detector's threshold in seconds when the code sets none."""
ACCOUNTING_ENV = "BRIDGES_ACCOUNTING"
"""Environment variable: ``0`` turns accounting off when the code does not say."""

_REPORTED = "__bridges_reported__"
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def _os_thread_ident() -> Callable[[], int]:
    """``threading.get_ident`` as the OS sees it.

    ``gevent.monkey.patch_all()`` replaces it with a per-greenlet id, which
    would make every greenlet look like another thread to the hub.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "get_ident")  # type: ignore[no-any-return]
    return threading.get_ident


def slow_callback_value(value: float | str | None, where: str = "slow_callback") -> float | None:
    """The blocking detector's threshold: ``value``, else ``$BRIDGES_SLOW_CALLBACK``, else None."""
    if value is None:
        value = os.environ.get(SLOW_CALLBACK_ENV) or None
        where = SLOW_CALLBACK_ENV
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise UsageError(
            f"bridges: {where} must be a positive number of seconds (e.g. 0.1) or none, "
            f"not {value!r}."
        )
    return seconds


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


class Hub:
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

    ``accounting`` (on by default; ``BRIDGES_ACCOUNTING=0`` turns the default
    off) counts each framework's dispatches and loop time, for
    :meth:`stats`.  ``slow_callback`` (seconds; default: the
    ``BRIDGES_SLOW_CALLBACK`` environment variable, else off) starts the
    blocking detector: a dispatch that holds the loop longer is reported
    while it blocks, naming its framework, the user's function and the stack
    (:class:`bridges.SlowCallbackError`, see docs/observability.md).
    """

    def __init__(
        self,
        frameworks: _adapter.FrameworksArg = "auto",
        *,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        accounting: bool | None = None,
        slow_callback: float | None = None,
    ) -> None:
        self._classes = _adapter.resolve(frameworks)
        self.stop_timeout = stop_timeout
        self.slow_callback = slow_callback_value(slow_callback)
        if accounting is None:
            accounting = os.environ.get(ACCOUNTING_ENV, "1").strip().lower() not in (
                "0",
                "no",
                "off",
                "false",
            )
        self._accounting_on = accounting or self.slow_callback is not None
        self.accounting: Accounting | None = None
        """The accounting of this run (the adapters' dispatch hook), None when it is off."""
        self.watchdog: Watchdog | None = None
        """The blocking detector, while it runs (``slow_callback`` set)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._get_ident: Callable[[], int] = threading.get_ident
        self._attached: list[Adapter] = []
        self._by_name: dict[str, Adapter] = {}
        self._readers: dict[int, str] = {}
        self._writers: dict[int, str] = {}
        self._signals: dict[int, str] = {}
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

    def fd_owners(self) -> dict[str, dict[int, str]]:
        """A snapshot of who owns which fd: ``{"readers": {fd: owner}, "writers": {...}}``."""
        return {"readers": dict(self._readers), "writers": dict(self._writers)}

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
        if self._accounting_on:
            self.accounting = Accounting(self._describe_dispatch)
            self.accounting.watch_loop(loop, self._thread_id)
        try:
            for cls in self._classes:
                adapter = cls(self)
                outcome = adapter.attach()
                self._attached.append(adapter)
                self._by_name[adapter.name] = adapter
                if outcome is not None:
                    await outcome
                log.debug("bridges: attached %s", adapter.name)
            self._start_watchdog()
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
        if isinstance(exc, asyncio.CancelledError):
            return own_cancel  # our stop request: swallow it, so run() returns None
        if interruption is not None and not own_cancel:
            # Someone else's cancellation arrived while we stopped: pass on that
            # very object (AnyIO's cancel scopes recognise their own by it).
            raise interruption
        # Either nothing was cancelled, or our own stop request arrived while main
        # was already leaving with its result or exception: keep that outcome.
        return False

    def _start_watchdog(self) -> None:
        if self.slow_callback is None or self.accounting is None:
            return
        boundaries = []
        host = self._host
        frame = getattr(host.get_coro(), "cr_frame", None) if host is not None else None
        if frame is not None and frame.f_back is not None:
            # What runs the loop (on uvloop, the caller of run_until_complete):
            # the stack outside it is never a dispatch.
            boundaries.append(frame.f_back.f_code)
        self.watchdog = Watchdog(
            loop=self.loop,
            accounting=self.accounting,
            threshold=self.slow_callback,
            thread_ident=self._thread_id or 0,
            frameworks={
                adapter.requires.partition(".")[0]: adapter.name for adapter in self._attached
            },
            describe=self._describe_dispatch,
            report=self._report_stall,
            boundaries=boundaries,
        )
        self.watchdog.start()

    def _describe_dispatch(self, framework: str, what: Any) -> str:
        adapter = self._by_name.get(framework)
        if adapter is not None:
            return adapter.describe_dispatch(what)
        return qualified_name(what)

    def _report_stall(self, error: SlowCallbackError) -> None:
        self.report(
            error,
            f"bridges: {error.function} ({error.framework}) held the event loop for "
            f"{error.seconds:.3f}s, past slow_callback={self.slow_callback:g}s",
        )

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
        if self.accounting is None:
            figures: dict[str, Any] = {
                "wall_seconds": None,
                "busy_seconds": None,
                "loop_passes": None,
                "frameworks": {},
                "slowest": [],
            }
        else:
            figures = self.accounting.stats()
        figures["stalls"] = self.watchdog.stalls if self.watchdog is not None else 0
        figures["slow_callback"] = self.slow_callback
        return figures

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

    def _stop_stages(self) -> Iterator[_Stage]:
        attached = list(reversed(self._attached))
        for adapter in attached:
            if adapter.runs_shutdown_work:
                yield _Stage(adapter.name, adapter.detach, describe_waiter)
        yield _Stage("legacy tasks", self._cancel_legacy_tasks, self._describe_legacy_tasks)
        for adapter in attached:
            if not adapter.runs_shutdown_work:
                yield _Stage(adapter.name, adapter.detach, describe_waiter)

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
            if self.watchdog is not None:
                self.watchdog.stop()
            if self.accounting is not None:
                self.accounting.unwatch_loop()
            self._release_registrations()
            self._attached.clear()
            self._by_name.clear()
            _hubs.pop(self.loop, None)
            self._phase = "stopped"
            log.debug("bridges: stopped")

    async def _bounded(self, stage: _Stage, outcome: Awaitable[Any]) -> None:
        waiter = asyncio.ensure_future(outcome)
        done, _ = await asyncio.wait({waiter}, timeout=self.stop_timeout)
        if done:
            waiter.result()
            return
        waiting_for = stage.describe(waiter)
        waiter.cancel()
        self.report(
            StopTimeoutError(
                f"bridges: stop stage {stage.name!r} did not finish within "
                f"{self.stop_timeout:g}s; it was still waiting for {waiting_for}. The hub "
                "went on so that shutdown does not hang. Make that work finish (or respect "
                "cancellation) sooner, or raise Hub(stop_timeout=...)."
            ),
            f"bridges: stop stage {stage.name!r} timed out",
        )
        await asyncio.wait({waiter}, timeout=min(self.stop_timeout, 1.0))

    def _cancel_legacy_tasks(self) -> Awaitable[None] | None:
        pending = self.pending_tasks()
        for task in pending:
            task.cancel()
        return self._report_cancel_failures(pending) if pending else None

    async def _report_cancel_failures(self, tasks: list[asyncio.Task[Any]]) -> None:
        # asyncio.wait, unlike gather, leaves the tasks alone if this stage is
        # itself cancelled after its bounded wait.
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                self.report(
                    task.exception(), f"bridges: {task!r} raised while it was cancelled at stop"
                )

    def _describe_legacy_tasks(self, _: asyncio.Future[Any]) -> str:
        return ", ".join(describe_waiter(task) for task in self.pending_tasks())

    def _release_registrations(self) -> None:
        loop = self.loop
        if loop.is_closed():
            return
        for fd in list(self._readers):
            loop.remove_reader(fd)
        for fd in list(self._writers):
            loop.remove_writer(fd)
        for signum in list(self._signals):
            loop.remove_signal_handler(signum)
        self._readers.clear()
        self._writers.clear()
        self._signals.clear()

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

    # -- file descriptors ---------------------------------------------------

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None:
        """``loop.add_reader`` that refuses to replace another owner's reader."""
        fileno = _fileno(fd)
        _claim(self._readers, fileno, owner, "reader", FdConflictError)
        _register_or_unclaim(self._readers, fileno, self.loop.add_reader, callback, args)

    def remove_reader(self, fd: Any, *, owner: str) -> bool:
        fileno = _fileno(fd)
        if not _release(self._readers, fileno, owner, "reader", FdConflictError):
            return False
        return self.loop.remove_reader(fileno)

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None:
        """``loop.add_writer`` that refuses to replace another owner's writer."""
        fileno = _fileno(fd)
        _claim(self._writers, fileno, owner, "writer", FdConflictError)
        _register_or_unclaim(self._writers, fileno, self.loop.add_writer, callback, args)

    def remove_writer(self, fd: Any, *, owner: str) -> bool:
        fileno = _fileno(fd)
        if not _release(self._writers, fileno, owner, "writer", FdConflictError):
            return False
        return self.loop.remove_writer(fileno)

    # -- signals ------------------------------------------------------------

    def add_signal_handler(
        self, signum: int, callback: Callable[..., Any], *args: Any, owner: str
    ) -> None:
        """``loop.add_signal_handler`` that refuses to replace another owner's handler."""
        _claim(self._signals, int(signum), owner, "handler", SignalConflictError)
        _register_or_unclaim(
            self._signals, int(signum), self.loop.add_signal_handler, callback, args
        )

    def remove_signal_handler(self, signum: int, *, owner: str) -> bool:
        if not _release(self._signals, int(signum), owner, "handler", SignalConflictError):
            return False
        return self.loop.remove_signal_handler(signum)

    # -- the error sink -----------------------------------------------------

    def report(self, exc: BaseException | None, message: str, **context: Any) -> None:
        """Report an error nobody handled, once, through the loop's exception handler.

        Adapters route their framework's "unhandled error" paths here (Twisted's
        unhandled Failures, gevent's ``handle_error``, Tornado's callback
        errors).  The same exception object is reported only the first time,
        however many paths it takes.  Callable from any thread.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            log.error("%s", message, exc_info=exc)
            return
        if self._get_ident() != self._thread_id:
            loop.call_soon_threadsafe(lambda: self.report(exc, message, **context))
            return
        if exc is not None:
            if getattr(exc, _REPORTED, None) is self._report_token:
                return
            with contextlib.suppress(AttributeError):  # exceptions with __slots__
                setattr(exc, _REPORTED, self._report_token)
        payload: dict[str, Any] = {"message": message, "hub": self, **context}
        if exc is not None:
            payload["exception"] = exc
        loop.call_exception_handler(payload)


class _Stage(NamedTuple):
    name: str
    begin: Callable[[], Awaitable[Any] | None]
    describe: Callable[[asyncio.Future[Any]], str]


def _fileno(fd: Any) -> int:
    return fd if isinstance(fd, int) else int(fd.fileno())


def _claim(
    table: dict[int, str], key: int, owner: str, role: str, error: type[BridgeError]
) -> None:
    current = table.get(key)
    if current is not None and current != owner:
        what = _KIND[error]
        raise error(
            f"{what} {key} already has a {role} owned by {current!r}, and {owner!r} tried "
            f"to register another. asyncio keeps one {role} per {what}, so the second "
            f"would silently replace the first and {current!r} would wait forever. Let one "
            f"framework own {what} {key} (close or unregister {current!r}'s object first), "
            "and pass results between the frameworks with bridges.awaitable()."
        )
    table[key] = owner


def _register_or_unclaim(
    table: dict[int, str],
    key: int,
    register: Callable[..., Any],
    callback: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    # A claim must not outlive a registration the loop refused (epoll refuses
    # regular files; signals can only be set from the main thread).
    try:
        register(key, callback, *args)
    except BaseException:
        del table[key]
        raise


def _release(
    table: dict[int, str], key: int, owner: str, role: str, error: type[BridgeError]
) -> bool:
    current = table.get(key)
    if current is None:
        return False
    if current != owner:
        raise error(
            f"{owner!r} tried to remove the {role} of {_KIND[error]} {key}, which belongs "
            f"to {current!r}. Each owner removes only what it registered."
        )
    del table[key]
    return True


_KIND: dict[type[BridgeError], str] = {FdConflictError: "fd", SignalConflictError: "signal"}


def describe_waiter(waiter: asyncio.Future[Any]) -> str:
    """A future, or a task and where it is suspended, for messages that must say what waits."""
    if not isinstance(waiter, asyncio.Task):
        return repr(waiter)
    places = _places(waiter, None)
    where = f", suspended in {' -> '.join(places)}" if places else ""
    return f"task {waiter.get_name()!r} ({waiter.get_coro()!r}){where}"


def describe_task(task: asyncio.Task[Any], *, skip_file: str | None = None) -> str:
    """Where a pending task is suspended: ``function at file:line`` down the chain of awaits.

    ``Task.get_stack()`` stops at the task's own coroutine; the code that is
    really waiting is at the end of the chain of awaits below it, or, for a
    task waiting on a framework's own thread of control (a greenlet), where
    the attached adapter says it waits.  ``skip_file``: frames of that file
    (the caller's own machinery) are left out.
    """
    return " -> ".join(_places(task, skip_file)) or repr(task.get_coro())


def _places(task: asyncio.Task[Any], skip_file: str | None) -> list[str]:
    for cls in _adapter.loaded():
        places = cls.waiting_in(task)
        if places:
            return places
    return await_chain(task, skip_file=skip_file)
