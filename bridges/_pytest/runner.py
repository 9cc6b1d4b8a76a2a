"""One test's hub: the loop, the hub on it, and the jobs (fixtures, the test) run there.

The pytest plugin keeps pytest in charge of ordering (fixture setup, the
call, teardown) and hands each asynchronous piece to a :class:`TestRunner`,
which runs it to completion on the test's own loop with
``loop.run_until_complete``, the way ``asyncio.Runner`` does.  Between jobs
the loop is idle but alive, so the hub (and the Twisted reactor, the gevent
hub, ...) stays attached from the first fixture to the last teardown.

The hub is entered by a long-lived *host* task, exactly as ``bridges.run``
enters it from main; the host waits until the runner closes, and a stop
request (``reactor.stop()``) cancels the host, which the runner notices and
passes on to the job that is running.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import traceback
from typing import Any, Callable, Optional

from .._adapter import FrameworksArg
from .._convert import awaitable
from .._errors import BridgeError, NotAwaitableError, SlowCallbackError
from .._hub import Hub
from .._introspect import describe_task
from .._run import LoopFactoryArg, make_loop_factory, wind_down
from .native import HINT_TASK, NativeObjects

__all__ = ["ReentrantRunError", "TestRunner", "TestTimeoutError"]

GC_MODES = {"young": 1, "full": 2, "off": None}
"""``bridges_gc``: which garbage collection runs when a test ends.  A task's
exception nobody retrieved and Twisted's "Unhandled error in Deferred" are
only reported when their object is collected; a young-generation collection
(tens of microseconds) finds what the test itself just dropped, a full one
(tens of milliseconds in a big process) finds everything."""


class TestTimeoutError(BridgeError, TimeoutError):
    """A test (or an async fixture) ran past its ``timeout``."""

    __test__ = False  # a class named Test* must not be collected by pytest


class ReentrantRunError(BridgeError, RuntimeError):
    """Asynchronous work was handed to a test's loop while that loop was already running."""


Job = Callable[[], Any]


class TestRunner:
    """The loop and hub of one test; runs that test's asynchronous jobs in order."""

    __test__ = False

    def __init__(
        self,
        *,
        frameworks: FrameworksArg,
        loop_factory: LoopFactoryArg,
        timeout: Optional[float],
        stop_timeout: float,
        gc_mode: str,
        name: str,
        slow_callback: Optional[float] = None,
        on_slow: Optional[Callable[[dict[str, Any]], None]] = None,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self._gc_generation = GC_MODES[gc_mode]
        self.errors: list[dict[str, Any]] = []
        self.ignore: Optional[Callable[[dict[str, Any]], bool]] = None
        """Reports this predicate accepts are someone else's to handle (trial's logged errors)."""
        self._closed = False
        self._wound_down = False
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._baseline_tasks: set[asyncio.Task[Any]] = set()
        self._baseline_fds: dict[str, dict[int, str]] = {}
        self._native: Optional[NativeObjects] = None
        self.leak_hints: dict[str, str] = {"task": HINT_TASK}
        """How to learn more about each kind of leak (the attached adapters add theirs)."""
        self._vars: dict[contextvars.ContextVar[Any], Any] = {}
        self._current: asyncio.Task[Any] | None = None
        self.on_slow = on_slow
        """Takes the blocking detector's reports instead of the errors (a warning), if set."""
        self.hub = Hub(frameworks, stop_timeout=stop_timeout, slow_callback=slow_callback)
        self.loop = make_loop_factory(loop_factory)()
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(self._on_error)
        self._release = self.loop.create_future()
        self._started = self.loop.create_future()
        self._host = self.loop.create_task(self._host_main(), name=f"bridges host of {name}")
        self._host.add_done_callback(self._on_host_done)
        try:
            self._run_until_done(self._started)
            if not self._started.result():
                self._host.result()  # raises why the hub could not start
        except BaseException:
            self._close_loop()
            raise

    # -- the host -----------------------------------------------------------

    async def _host_main(self) -> None:
        async with self.hub:
            # What the hub and its adapters hold right after start is theirs,
            # never the test's leak.  Taken on the loop: adapters answer there.
            self._baseline_tasks = set(asyncio.all_tasks())
            self._baseline_fds = self.hub.fd_owners()
            self._native = NativeObjects(self.hub)
            self.leak_hints = self._native.hints()
            self._started.set_result(True)
            await self._release

    def _on_host_done(self, host: asyncio.Task[Any]) -> None:
        # A stop request (reactor.stop()) ended the hub while a job ran: the job
        # is the code "running in the hub", so it is cancelled too, as main is
        # under bridges.run().
        if not self._started.done():
            self._started.set_result(False)  # the hub could not start: the host says why
        current = self._current
        if self.hub.stop_reason is not None and current is not None and not current.done():
            current.cancel(f"bridges: hub stop requested by {self.hub.stop_reason}")

    # -- errors -------------------------------------------------------------

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def take_errors(self, *, collect: bool = True) -> list[dict[str, Any]]:
        """The errors reported since the last call, after collecting what the code just dropped."""
        if collect and self._gc_generation is not None:
            gc.collect(self._gc_generation)
        errors, self.errors = self.errors, []
        # filtered now, not when reported: whoever decides may learn of the
        # error later in the same call chain (another log observer)
        if self.ignore is not None:
            errors = [context for context in errors if not self.ignore(context)]
        if self.on_slow is not None:
            slow = [e for e in errors if isinstance(e.get("exception"), SlowCallbackError)]
            for context in slow:
                self.on_slow(context)
            errors = [e for e in errors if not isinstance(e.get("exception"), SlowCallbackError)]
        return errors

    # -- jobs ---------------------------------------------------------------

    def run(self, job: Job, *, what: str) -> Any:
        """Run ``job()`` (and await what it returns) on the hub; return its result.

        ``job`` is called inside a task on the running loop, so code that needs
        the loop or the reactor running at call time (``inlineCallbacks``
        starts at once) sees it running.  Its return value, if not None, is
        awaited through :func:`bridges.awaitable`.
        """
        __tracebackhide__ = True
        if self.loop.is_running():
            raise ReentrantRunError(
                f"bridges: {what} was requested while {self.name} was already running on its "
                "loop (request.getfixturevalue() of an async fixture from inside the test?). "
                "Request the fixture as an argument of the test instead."
            )
        context = contextvars.copy_context()
        for var, value in self._vars.items():
            context.run(var.set, value)
        task = context.run(self.loop.create_task, self._job(job, context), name=what)
        self._current = task
        try:
            if self.timeout is None:
                self._run_until_done(task)
            else:
                self.loop.run_until_complete(self._supervise(task, what, self.timeout))
        finally:
            self._current = None
        if task.cancelled() and self.hub.stop_reason is not None:
            return None  # stopped from inside (reactor.stop()), as bridges.run returns None
        return task.result()

    def _run_until_done(self, future: asyncio.Future[Any]) -> None:
        """Run the loop until ``future`` is done, without raising its exception.

        ``loop.run_until_complete`` would raise it (with one more frame of
        asyncio's in its traceback), and wrapping the future in
        ``asyncio.wait`` costs a task and a loop pass per job.
        """
        loop = self.loop

        def stop(_: asyncio.Future[Any]) -> None:
            loop.stop()

        future.add_done_callback(stop)
        try:
            loop.run_forever()
        finally:
            future.remove_done_callback(stop)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")

    async def _job(self, job: Job, context: contextvars.Context) -> Any:
        # The task runs in a copy of ``context``; what the job sets in its
        # contextvars is carried over to the jobs that follow (a fixture's
        # values are visible in the test), as pytest-asyncio does.
        try:
            return await resolved(job())
        finally:
            self._keep_vars(contextvars.copy_context(), context)

    def _keep_vars(self, after: contextvars.Context, before: contextvars.Context) -> None:
        for var, value in after.items():
            if var not in before or before[var] is not value:
                self._vars[var] = value

    async def _supervise(self, task: asyncio.Task[Any], what: str, timeout: float) -> None:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            return
        where = describe_task(task, skip_file=__file__)
        task.cancel(f"bridges: {what} passed its timeout of {timeout:g}s")
        await asyncio.wait({task}, timeout=self.stop_timeout)
        if task.done():
            tail = "It was cancelled."
        else:
            self._abandoned.add(task)
            tail = (
                f"It was cancelled but ignored the cancellation for {self.stop_timeout:g}s "
                "more; it is abandoned and the hub stops without it."
            )
        raise TestTimeoutError(
            f"bridges: {what} did not finish within its timeout of {timeout:g}s; it was "
            f"waiting in {where}. {tail} Make it finish sooner, or raise the limit with "
            "@pytest.mark.bridges(timeout=...) or the ini option bridges_timeout."
        )

    # -- the end ------------------------------------------------------------

    def find_leaks(self) -> list[str]:
        """What the test left alive on the hub, one line each, compared with right after start."""
        closing = asyncio.current_task(self.loop) if self.loop.is_running() else None
        leaks = [
            f"task {task!r}, waiting in {describe_task(task, skip_file=__file__)}{created_at(task)}"
            for task in asyncio.all_tasks(self.loop)
            if task not in self._baseline_tasks and task is not closing and not task.done()
        ]
        for role, owners in self.hub.fd_owners().items():
            before = self._baseline_fds.get(role, {})
            leaks.extend(
                f"fd {fd} still has a {role[:-1]} registered by {owner!r}"
                for fd, owner in owners.items()
                if before.get(fd) != owner
            )
        if self._native is not None:
            leaks.extend(self._native.leaks())
        return leaks

    def close(self) -> list[str]:
        """Stop the hub (running its stop sequence) and close the loop; return the leaks found.

        Everything happens in one pass of ``run_until_complete``: what
        ``asyncio.run`` does after main (cancel what is left, shut down async
        generators and the default executor) follows the hub's stop sequence,
        each step bounded.
        """
        if self._closed:
            return []
        if self.hub.running and self._gc_generation is not None:
            gc.collect(self._gc_generation)
        try:
            return self.loop.run_until_complete(self._close_on_loop())
        finally:
            self._close_loop()

    async def _close_on_loop(self) -> list[str]:
        leaks: list[str] = []
        if self.hub.running:
            await asyncio.sleep(0)  # reports scheduled by collected objects arrive
            leaks = self.find_leaks()
        self._close_native()
        if not self._release.done():
            self._release.set_result(None)
        await asyncio.wait({self._host})
        if not self._host.cancelled() and self._host.exception() is not None:
            self.errors.append(
                {"message": "bridges: the hub failed to stop", "exception": self._host.exception()}
            )
        await self._wind_down()
        return leaks

    async def _wind_down(self) -> None:
        self._wound_down = True
        # a test abandoned at its timeout was already reported; it is not waited for again
        await wind_down(self.stop_timeout, self.errors.append, skip=self._abandoned)

    def _close_loop(self) -> None:
        try:
            if not self.loop.is_closed() and not self._wound_down:
                # start failed or close was interrupted: still bound every step
                self.loop.run_until_complete(self._wind_down())
        finally:
            self._close_native()
            asyncio.set_event_loop(None)
            self.loop.close()
            self._closed = True
            # Errors reported from now on go to asyncio's default handler, and the
            # loop no longer holds the runner: without the cycle, the runner, its
            # hub and its tasks are freed at once instead of piling up until a full
            # collection (asyncio.all_tasks() walks every task still alive).
            self.loop.set_exception_handler(None)
            self._baseline_tasks = set()

    def _close_native(self) -> None:
        if self._native is not None:
            self._native.close()
            self._native = None


def outcome_of(func: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """Call a plain test in a green thread, its exception carried as a value.

    Raised inside the greenlet, the green framework would also report it as
    an error nobody handled, and the test would fail twice for one assertion.
    :func:`settle` re-raises it, unchanged, on the awaiting side.
    """
    try:
        return True, func(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - re-raised, unchanged, by settle()
        return False, exc


async def settle(outcome: tuple[bool, Any]) -> Any:
    """The result :func:`outcome_of` carried (awaited if awaitable), or its exception raised."""
    succeeded, value = outcome
    if not succeeded:
        raise value
    return await resolved(value)


async def resolved(result: Any) -> Any:
    """What a test or fixture returned, awaited if it is awaitable.

    A plain function may return a Deferred, a greenlet or a coroutine (legacy
    tests do, so that their runner waits): the hub waits for it too, through
    the converters every framework registered; anything else is the result.
    """
    if result is None:
        return None
    try:
        converted = awaitable(result)
    except NotAwaitableError:
        return result
    return await converted


def created_at(task: asyncio.Task[Any]) -> str:
    """``, created at file:line`` (the first frame outside asyncio) in asyncio debug mode.

    asyncio records where each task was made only in debug mode, in the private
    ``_source_traceback`` (a list of FrameSummary; checked on Python 3.9-3.13),
    and its repr shows the innermost frame, which is asyncio's own.
    """
    frames = getattr(task, "_source_traceback", None) or []
    asyncio_dir = os.path.dirname(asyncio.__file__)
    for frame in reversed(frames):
        if not frame.filename.startswith(asyncio_dir):
            return f", created at {frame.filename}:{frame.lineno}"
    return ""


def format_errors(errors: list[dict[str, Any]]) -> str:
    """The reported errors as readable text: each message, its context and its traceback."""
    parts = []
    for number, context in enumerate(errors, 1):
        lines = [f"[{number}] {context.get('message') or 'unhandled error'}"]
        for key in ("future", "task", "handle", "transport", "protocol"):
            if key in context:
                lines.append(f"    {key}: {context[key]!r}")
        exc = context.get("exception")
        if exc is not None:
            lines.extend(
                "    " + line
                for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__)
                for line in chunk.rstrip("\n").split("\n")
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
