"""Portals: asyncio tasks whose coroutine runs inside a greenlet of its own.

A green framework (gevent, eventlet) blocks a greenlet by switching to its
hub.  asyncio code has no greenlet of its own to suspend: its frames sit on
the stack of the greenlet that runs the loop, so a blocking call there would
stall every task.  A *portal* gives each task that greenlet.  The task's
coroutine is wrapped in a :class:`Portal`, a coroutine-like object whose
every step (``send``/``throw``, called by the task) switches into the task's
:class:`PortalGreenlet`, which steps the real coroutine and switches back
with what it yielded.  The coroutine, the task, ``current_task()``, its
context and its cancel scopes are the same as without the portal.

When green code blocks inside such a step, the framework's hub-switch guard
calls :func:`park`: the greenlet switches back to the task with a fresh
future, which the task awaits like any other.  The framework wakes a
blocked greenlet by calling its ``switch`` (or ``throw``): the
:class:`PortalGreenlet` overrides both, so the wake-up resolves that future
instead, and the greenlet resumes inside the task's next step.  Cancelling
the task throws ``CancelledError`` at the blocking call, so the green code's
``finally`` blocks clean up what it waited on.

Sync code that a portal-task runs may also await an asyncio awaitable
inline (:func:`await_inline`), as greenback's ``await_`` does: the awaitable
is stepped in the task's greenlet, and what it yields goes to the task.

Framework-neutral: a framework's adapter calls :func:`enable` at attach and
:func:`end` (or :func:`disable`) at detach (counted, so two frameworks
share one task factory), calls :func:`park` from its hub's switch guard, and
:func:`await_inline` from its ``wait()``.  A framework whose code may also
switch straight from a portal's greenlet into another green thread
(eventlet's ``kill()`` throws into it) has its hub greenlet, when entered
that way, switch back to :func:`switched_out`.
"""

from __future__ import annotations

import asyncio
import collections.abc
import types
import weakref
from typing import Any, Awaitable, Callable, Generator

from greenlet import GreenletExit, getcurrent
from greenlet import greenlet as _greenlet

from ._errors import BridgeError

__all__ = [
    "Portal",
    "PortalGreenlet",
    "PortalSwitchError",
    "add_throw_hook",
    "await_inline",
    "blocked_tasks",
    "current_portal",
    "disable",
    "enable",
    "enabled",
    "end",
    "park",
    "remove_throw_hook",
    "switched_out",
    "wrap",
]

_switch = _greenlet.switch
_throw = _greenlet.throw
_CoroutineType = types.CoroutineType
_INLINE_WAKEUPS = 20
"""How many green waits in a row a portal-task may end inside one step (see park)."""
_IN_STEP: Any = object()
"""``Portal._blocked`` while park() lets the green hub answer inside the step."""
_throw_hooks: list[Callable[[], None]] = []
"""Called, in the thrower, after something threw into a portal's greenlet that was not running
(see :func:`add_throw_hook`)."""


class PortalSwitchError(BridgeError, RuntimeError):
    """Green code switched to a portal-task's greenlet that is not waiting on green code."""


class PortalGreenlet(_greenlet):
    """The greenlet a portal-task's coroutine runs in.

    A framework wakes a blocked greenlet with ``switch``/``throw``, looked up
    on the instance (gevent's compiled ``Waiter`` does).  Here that wake-up
    is routed into the task's next step, so the greenlet resumes inside its
    task, not inside the framework's hub.
    """

    portal: Portal

    def switch(self, *args: Any, **kwargs: Any) -> Any:
        portal = self.portal
        if portal._blocked is None:
            if self is getcurrent():
                return _switch(self, *args, **kwargs)
            raise PortalSwitchError(
                f"something switched to the greenlet of {portal._describe()}, which is not "
                "blocked on green code (it awaits asyncio, or is running). Only a blocked "
                "greenlet can be switched to; wake it through the object it waits on."
            )
        portal._wake(_switch, args, kwargs)
        return None

    def throw(self, *args: Any) -> Any:
        portal = self.portal
        if portal._blocked is not None:
            portal._wake(_throw_into, (_exception(args),), None, replace=True)
        elif self is getcurrent() or not self:
            return _throw_into(self, _exception(args))
        else:
            # The task awaits asyncio (a gevent.Timeout around an await, a
            # kill): interrupt the awaited operation, as cancellation does,
            # and raise this exception there instead of CancelledError.
            portal._interrupt(_exception(args))
        for hook in _throw_hooks:
            hook()
        return None


def _exception(args: tuple[Any, ...]) -> BaseException:
    kind = args[0] if args else None
    if kind is None:
        return GreenletExit()
    if isinstance(kind, BaseException):
        return kind
    value = args[1] if len(args) > 1 else None
    if isinstance(value, BaseException):
        return value
    return kind() if value is None else kind(value)


def _throw_into(glet: _greenlet, exc: BaseException) -> Any:
    """``glet.throw(exc)`` keeping ``exc``'s traceback (greenlet's throw drops it otherwise)."""
    return _throw(glet, type(exc), exc, exc.__traceback__)


def _drive(portal: Portal, value: Any) -> Any:
    """The run function of a portal's greenlet: step the coroutine, hand back what it yields.

    Its end (the coroutine's ``StopIteration`` or exception) propagates to
    the greenlet's parent, the loop's greenlet, at the ``switch`` of the
    task's step: that is where the task expects it.
    """
    coro = portal.coro
    send = coro.send
    throw = coro.throw
    parent = getcurrent().parent
    try:
        out = send(value)
        while True:
            try:
                value = _switch(parent, out)
            except BaseException as exc:  # noqa: BLE001 - the task's throw(), for the coroutine
                out = throw(exc)
            else:
                out = send(value)
    except GreenletExit as exc:
        # greenlet would take it as the greenlet's return value, and the task
        # would see it as a bad yield: carried past greenlet, re-raised by the step.
        raise _CarriedExit(exc) from None


class _CarriedExit(BaseException):
    """A ``GreenletExit`` that a portal's coroutine raised (a killed greenthread's ``wait()``)."""

    def __init__(self, exc: GreenletExit) -> None:
        super().__init__(exc)
        self.exc = exc


class Portal:
    """A coroutine stepped inside a greenlet of its own (see the module docstring).

    It is a ``collections.abc.Coroutine``, so asyncio accepts it as a task's
    coroutine; ``cr_frame``, ``cr_await`` and friends are the wrapped
    coroutine's, so introspection (``Task.get_stack``, AnyIO) sees the code.
    """

    __slots__ = (
        "__weakref__",
        "_blocked",
        "_budget",
        "_interrupting",
        "_wakeup",
        "coro",
        "glet",
        "task",
    )

    def __init__(self, coro: Any) -> None:
        self.coro = coro
        self.glet: PortalGreenlet | None = None
        self.task: asyncio.Task[Any] | None = None
        self._blocked: Any = None
        """The future the task awaits while its greenlet is blocked on green code."""
        self._wakeup: tuple[Callable[..., Any], tuple[Any, ...], Any] | None = None
        self._interrupting: BaseException | None = None
        self._budget = _INLINE_WAKEUPS

    # -- the coroutine protocol (called by the task) ---------------------------

    def send(self, value: Any = None) -> Any:
        try:
            if self._blocked is None:
                glet = self.glet
                if glet is None:
                    return _switch(self._start(), self, value)
                return _switch(glet, value)
            return self._resume()
        except _CarriedExit as carried:
            exc = carried.exc
        raise exc

    __next__ = send

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = _exception((typ, val)) if tb is None else _exception((typ, val)).with_traceback(tb)
        glet = self.glet
        if glet is None:
            return self.coro.throw(exc)
        interrupting = self._interrupting
        if interrupting is not None and isinstance(exc, asyncio.CancelledError):
            self._interrupting = None
            exc = interrupting
            uncancel = getattr(self.task, "uncancel", None)
            if uncancel is not None:
                uncancel()
        if self._blocked is not None:
            self._blocked = self._wakeup = None
        try:
            return _throw_into(glet, exc)
        except _CarriedExit as carried:
            exc = carried.exc
        raise exc

    def close(self) -> None:
        glet = self.glet
        if glet is None or glet.dead or not glet:
            self.coro.close()
            return
        try:
            self._blocked = self._wakeup = None
            _throw(glet, GeneratorExit())
        except (GeneratorExit, StopIteration):
            return
        raise RuntimeError(f"{self.coro!r} ignored GeneratorExit")

    def __await__(self) -> Portal:
        return self

    # -- introspection: the wrapped coroutine's (cr_frame, cr_await, __qualname__...) --

    def __getattr__(self, name: str) -> Any:
        if name == "coro":
            raise AttributeError(name)
        return getattr(self.coro, name)

    def __repr__(self) -> str:
        return repr(self.coro)

    # -- internals ---------------------------------------------------------------

    def _start(self) -> PortalGreenlet:
        glet = PortalGreenlet(_drive)
        glet.portal = self
        # The task's context object itself (not a copy): what the coroutine
        # sets is the task's, as without the portal.
        glet.gr_context = getcurrent().gr_context
        self.glet = glet
        self.task = asyncio.current_task()
        return glet

    def _resume(self) -> Any:
        """The task's step after a wake-up: resume the greenlet where it blocked."""
        wakeup = self._wakeup
        self._blocked = self._wakeup = None
        if wakeup is None:  # pragma: no cover - only _wake resolves the future
            raise PortalSwitchError(f"{self._describe()} resumed without a wake-up")
        method, args, kwargs = wakeup
        if kwargs:
            return method(self.glet, *args, **kwargs)
        return method(self.glet, *args)

    def _wake(
        self,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Any,
        *,
        replace: bool = False,
    ) -> None:
        """Green code woke the blocked greenlet: resume it in the task's next step.

        The first wake-up wins, except that an exception (a ``gevent.Timeout``,
        a kill) replaces a pending value, as a task's cancellation wins over
        a result it has not yet seen.
        """
        blocked = self._blocked
        if blocked is None or (self._wakeup is not None and not replace):
            return
        self._wakeup = (method, args, kwargs)
        if blocked is not _IN_STEP and not blocked.done():
            blocked.set_result(None)

    def _interrupt(self, exc: BaseException) -> None:
        task = self.task
        if task is None or task.done():
            return
        self._interrupting = exc
        task.cancel()

    def _describe(self) -> str:
        task = self.task
        return f"task {task.get_name()!r} ({self.coro!r})" if task is not None else repr(self)


collections.abc.Coroutine.register(Portal)


# -- what green code calls, inside a portal ------------------------------------


def current_portal() -> Portal | None:
    """The portal whose greenlet is running, or None (a plain greenlet, the loop's code)."""
    current = getcurrent()
    if type(current) is PortalGreenlet:
        return current.portal
    return None


def park(portal: Portal, run_due: Callable[[], None] | None = None) -> Any:
    """From green code in ``portal``'s greenlet: suspend the task until green code wakes it.

    Returns what the wake-up's ``switch`` passed (or raises what its
    ``throw`` passed, or the task's cancellation).

    ``run_due`` (the framework's "run the hub's pending callbacks now") lets
    a wait that the hub can answer at once - ``sleep(0)``, an event another
    greenlet sets as soon as it runs - end inside this step, as it does for
    a greenlet, without two loop iterations.  A budget bounds how often in a
    row, so that a task looping on such calls still lets the loop run.
    """
    glet: Any = portal.glet
    if run_due is not None:
        if portal._budget:
            portal._blocked = _IN_STEP
            run_due()
            wakeup = portal._wakeup
            if wakeup is not None:
                portal._budget -= 1
                portal._blocked = portal._wakeup = None
                method, args, kwargs = wakeup
                # switch()/throw() on the running greenlet returns/raises at once.
                return method(glet, *args, **(kwargs or {}))
        portal._budget = _INLINE_WAKEUPS
    blocked = asyncio.get_running_loop().create_future()
    blocked._asyncio_future_blocking = True
    portal._blocked = blocked
    return _switch(glet.parent, blocked)


def switched_out(
    loop: asyncio.AbstractEventLoop, candidate: PortalGreenlet | None
) -> PortalGreenlet | None:
    """For a hub greenlet entered by a direct switch: the portal's greenlet that made it, if any.

    A portal-task's greenlet that switched (or threw) straight into a green
    thread, instead of blocking on the hub, left its task's step under way
    in the loop's greenlet; the hub greenlet, when that thread blocks or
    ends, is to switch back to this greenlet (where the step goes on), not
    to the loop's greenlet in the middle of the step.  ``candidate`` is the
    greenlet the framework saw switch out (it need not be the task's
    coroutine: ``bridges.run``'s main is a portal awaited by its task).
    None when the running task (if any) is not a portal-task mid-step.
    """
    task = asyncio.current_task(loop)
    if task is None:
        return None
    portal = candidate.portal if candidate is not None else task.get_coro()
    if type(portal) is not Portal or portal.task is not task:
        portal = task.get_coro()
        if type(portal) is not Portal:
            return None
    glet = portal.glet
    if portal._blocked is not None or glet is None or glet.dead or glet is getcurrent():
        return None
    return glet


def await_inline(portal: Portal, aw: Awaitable[Any]) -> Any:
    """From sync code in ``portal``'s greenlet: await ``aw`` inline in its task.

    ``aw`` is stepped right here; what it yields goes to the task (through
    the greenlet's parent), and the task's next step resumes it.  No new
    task, no context copy.  A coroutine that never suspends costs no switch.
    """
    glet: Any = portal.glet
    iterator: Any = aw if type(aw) is _CoroutineType else _await_iterator(aw)
    send = iterator.send
    value = None
    parent = glet.parent
    try:
        out = send(None)
        while True:
            try:
                value = _switch(parent, out)
            except BaseException as exc:  # noqa: BLE001 - the task's throw(), for aw
                out = iterator.throw(exc)
            else:
                out = send(value)
    except StopIteration as stop:
        return stop.value


def _await_iterator(aw: Awaitable[Any]) -> Generator[Any, Any, Any]:
    return aw.__await__()  # type: ignore[return-value]


def add_throw_hook(hook: Callable[[], None]) -> None:
    """Call ``hook()`` in the thrower each time something throws into a waiting portal.

    For a framework whose ``kill()`` throws straight into the greenlet it
    kills and expects to be switched back to later (eventlet's schedules that
    wake-up first): a portal's greenlet takes the exception without running,
    so the hook lets the killer yield as it would natively.  Pair with
    :func:`remove_throw_hook`.
    """
    _throw_hooks.append(hook)


def remove_throw_hook(hook: Callable[[], None]) -> None:
    """Undo :func:`add_throw_hook`."""
    if hook in _throw_hooks:
        _throw_hooks.remove(hook)


# -- the task factory ------------------------------------------------------------


class _Factory:
    """A loop's task factory while portals are on: every coroutine task gets a portal."""

    __slots__ = ("previous", "users")

    def __init__(self, previous: Any) -> None:
        self.previous = previous
        self.users = 1

    def __call__(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        if type(coro) is _CoroutineType:
            coro = Portal(coro)
        previous = self.previous
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)


_factories: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Factory] = (
    weakref.WeakKeyDictionary()
)


def enable(loop: asyncio.AbstractEventLoop) -> None:
    """Give every task created on ``loop`` from now on a portal (counted: pair with disable)."""
    factory = _factories.get(loop)
    if factory is not None and loop.get_task_factory() is factory:
        factory.users += 1
        return
    factory = _Factory(loop.get_task_factory())
    _factories[loop] = factory
    loop.set_task_factory(factory)


def disable(loop: asyncio.AbstractEventLoop) -> None:
    """Undo one :func:`enable`; the last one puts the loop's previous task factory back."""
    factory = _factories.get(loop)
    if factory is None:
        return
    factory.users -= 1
    if factory.users > 0:
        return
    del _factories[loop]
    if loop.get_task_factory() is factory and not loop.is_closed():
        loop.set_task_factory(factory.previous)


def enabled(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether tasks created on ``loop`` now get portals."""
    factory = _factories.get(loop)
    return factory is not None and loop.get_task_factory() is factory


async def end(loop: asyncio.AbstractEventLoop) -> None:
    """At a green framework's detach: no new portals; tasks blocked in green code are cancelled.

    While the framework still runs: the tasks' ``finally`` blocks may still
    use it, and what they waited on is cleaned up by the framework itself;
    after its hub is gone nothing would ever wake them.
    """
    disable(loop)
    blocked = blocked_tasks(loop)
    for task in blocked:
        task.cancel()
    if blocked:
        await asyncio.wait(blocked)


def blocked_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    """The tasks of ``loop`` whose portal is blocked on green code right now."""
    return [
        task
        for task in asyncio.all_tasks(loop)
        if isinstance(portal := task.get_coro(), Portal) and portal._blocked is not None
    ]


def wrap(aw: Any) -> Any:
    """``aw`` in a portal, if it is a coroutine and the running loop has portals on.

    For a coroutine awaited inside a task that has none (``bridges.run``'s
    main runs in the task that attaches the frameworks).
    """
    if type(aw) is not _CoroutineType:
        return aw
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return aw
    return Portal(aw) if enabled(loop) else aw
