"""``bridges.run()``: ``asyncio.run`` with every requested framework attached to the loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
import threading
from typing import Any, Callable, Collection, Coroutine, TypeVar, Union

from ._adapter import FrameworksArg
from ._convert import awaitable, has_converter
from ._errors import BridgeError, HubStateError, LoopFactoryError, UsageError
from ._hub import DEFAULT_STOP_TIMEOUT, Hub
from ._observe import AccountingArg

__all__ = ["make_loop_factory", "run", "wind_down"]

log = logging.getLogger("bridges")

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LoopFactoryArg = Union[None, str, LoopFactory]

_SIGINT = "SIGINT"
_OWNER = "bridges.run"


def make_loop_factory(loop_factory: LoopFactoryArg) -> LoopFactory:
    """Resolve ``loop_factory=`` into a callable returning a new event loop."""
    if loop_factory is None or loop_factory == "asyncio":
        return asyncio.new_event_loop
    if loop_factory == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise LoopFactoryError(
                "loop_factory='uvloop' needs the uvloop package, which is not installed. "
                "Install it with: pip install 'tulip-bridges[uvloop]'"
            ) from None
        return uvloop.new_event_loop  # type: ignore[no-any-return]
    if callable(loop_factory):
        return loop_factory
    raise LoopFactoryError(
        "loop_factory must be None (the default asyncio loop), 'uvloop', or a callable "
        f"that returns a new event loop, not {loop_factory!r}."
    )


def run(
    main: Any,
    *args: Any,
    frameworks: FrameworksArg = "auto",
    loop_factory: LoopFactoryArg = None,
    debug: bool = False,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    portals: bool = True,
    slow_callback: float | None = None,
    accounting: AccountingArg = None,
) -> Any:
    """Run ``main`` on a new hub, like :func:`asyncio.run`, and return its result.

    ``main`` is a coroutine function (called with ``args``), a coroutine, or
    anything :func:`bridges.awaitable` accepts.  ``frameworks`` is ``"auto"``
    (each installed framework), ``None`` (plain asyncio) or an iterable of
    names.  ``loop_factory`` is None, ``"uvloop"`` or a callable.
    ``portals``: see :class:`bridges.Hub` (with gevent or eventlet attached,
    main and every task may make blocking calls of that framework, which
    suspend only that task).
    ``slow_callback`` (seconds) names any dispatch that holds the loop longer,
    while it blocks (default: ``$BRIDGES_SLOW_CALLBACK``, else off);
    ``accounting`` counts loop time per framework (on unless
    ``BRIDGES_ACCOUNTING=0``; ``"exact"`` times every dispatch); see
    :meth:`bridges.Hub.stats`.

    How it ends: main's result is returned and its exception raised.  SIGTERM
    (or ``reactor.stop()``) cancels main, runs the stop sequence and returns
    None.  SIGINT runs the stop sequence and raises ``KeyboardInterrupt``, as
    ``asyncio.run`` does; a second SIGINT interrupts the stop sequence itself.
    ``run`` may be called again and again in one process.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HubStateError(
            "bridges.run() cannot be called from a running event loop. Inside one, "
            "use `async with bridges.Hub(): ...` instead."
        )
    factory = make_loop_factory(loop_factory)
    hub = Hub(
        frameworks,
        stop_timeout=stop_timeout,
        portals=portals,
        slow_callback=slow_callback,
        accounting=accounting,
    )
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        loop.set_debug(debug)
        result = loop.run_until_complete(_main_on_hub(hub, main, args))
    finally:
        try:
            loop.run_until_complete(wind_down(stop_timeout, loop.call_exception_handler))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    if hub.stop_reason == _SIGINT:
        raise KeyboardInterrupt
    return result


async def _main_on_hub(hub: Hub, main: Any, args: tuple[Any, ...]) -> Any:
    async with hub:
        _install_stop_signals(hub)
        # main's own task entered the hub before gevent/eventlet attached: a
        # portal around main's coroutine lets main make green blocking calls too.
        return await portal_around(awaitable(_call_main(main, args)))
    return None  # reached only when a stop request cancelled main


def portal_around(aw: Any) -> Any:
    """``aw`` inside a portal if the loop has portals on (bridges._portal, imported by gevent)."""
    portals = sys.modules.get("bridges._portal")
    return aw if portals is None else portals.wrap(aw)


def _call_main(main: Any, args: tuple[Any, ...]) -> Any:
    # Some primitives are callable (gevent's AsyncResult): await what awaitable() knows.
    if callable(main) and not inspect.isawaitable(main) and not has_converter(type(main)):
        return main(*args)
    if args:
        raise UsageError(
            f"bridges.run() got arguments {args!r} for main, but main is {main!r}, "
            "not a function to call with them. Pass the function itself: "
            "bridges.run(main, *args)."
        )
    return main


def _install_stop_signals(hub: Hub) -> None:
    # Signal handlers can only be set from the main thread (as asyncio.run does it).
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        hub.add_signal_handler(signal.SIGINT, _on_sigint, hub, owner=_OWNER)
        hub.add_signal_handler(signal.SIGTERM, hub.request_stop, "SIGTERM", owner=_OWNER)
    except (ValueError, RuntimeError) as exc:
        # uvloop refuses once gevent.monkey.patch_all() has changed the main
        # thread's identity; running without them beats not running at all.
        with contextlib.suppress(BridgeError):
            hub.remove_signal_handler(signal.SIGINT, owner=_OWNER)
        log.warning(
            "bridges: the loop refused signal handlers (%s), so SIGINT and SIGTERM will not "
            "stop the hub gracefully. With uvloop and gevent.monkey.patch_all(), create one "
            "uvloop loop before patching (docs/gevent.md), or use the stdlib loop.",
            exc,
        )


def _on_sigint(hub: Hub) -> None:
    # Give the default handler back at once, so that a second Ctrl-C raises
    # KeyboardInterrupt straight away if the stop sequence is not quick enough.
    hub.remove_signal_handler(signal.SIGINT, owner=_OWNER)
    hub.request_stop(_SIGINT)


async def wind_down(
    timeout: float,
    report: Callable[[dict[str, Any]], None],
    *,
    skip: Collection[asyncio.Task[Any]] = (),
) -> None:
    """What ``asyncio.run`` does after main, each step bounded so that exit never hangs.

    Every other task is cancelled and waited for (but not those in ``skip``,
    already given up on); a task that ignores cancellation or raises while
    cancelled, and a step that overruns, is passed to ``report`` as an
    exception-handler context.  Then async generators and the default
    executor are shut down.  Used by :func:`run` and by the pytest plugin.
    """
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    tasks = [task for task in tasks if task not in skip]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            report(
                {
                    "message": f"bridges: {task!r} ignored cancellation for {timeout:g}s at "
                    "exit; abandoning it. Let it respect asyncio.CancelledError.",
                    "task": task,
                }
            )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                report(
                    {
                        "message": "bridges: a task raised while it was cancelled at exit",
                        "exception": task.exception(),
                        "task": task,
                    }
                )
    for step, what in (
        (loop.shutdown_asyncgens, "async generators"),
        (loop.shutdown_default_executor, "the default executor's threads"),
    ):
        try:
            await _bounded(step(), timeout)
        except asyncio.TimeoutError:
            report({"message": f"bridges: gave up waiting for {what} after {timeout:g}s at exit"})


async def _bounded(step: Coroutine[Any, Any, None], timeout: float) -> None:
    """``asyncio.wait_for(step, timeout)``, run in the calling task where Python allows.

    Before 3.12, ``wait_for`` wraps the step in a task of its own: two tasks
    and their loop passes for each test of the pytest plugin, for steps that
    usually have nothing to do.  ``asyncio.timeout`` (3.11+) bounds the await
    in place, raising the same ``TimeoutError``.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            await step
    else:
        await asyncio.wait_for(step, timeout)
