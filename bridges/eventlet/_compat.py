"""Every private eventlet attribute bridges.eventlet relies on, in one place.

Each entry says what it is, which eventlet versions were checked, and which
test shows the behaviour relied on (in ``tests/test_eventlet.py``).
eventlet's hub *subclassing* interface (``BaseHub.add``/``remove``/
``remove_descriptor``/``add_timer``/``timer_canceled``/``switch``, its
``listeners``, ``closed`` and ``greenlet`` attributes, ``close_one``,
``ensure_greenlet``) is what every eventlet hub implements and is used
directly; what is listed here goes beyond it.

Checked on eventlet 0.36.1 - 0.41.3.
"""

from __future__ import annotations

from . import _quiet  # noqa: F401  (first: eventlet without its notice)

# isort: split

import sys
from types import TracebackType
from typing import Any, Callable

import eventlet.hubs
from eventlet.greenthread import GreenThread
from eventlet.hubs import asyncio as _asyncio_hub

__all__ = [
    "AsyncioHubBase",
    "add_event_waiter",
    "current_hub",
    "exit_has_receiver",
    "greenthread_in_traceback",
    "remove_event_waiter",
    "set_current_hub",
    "timer_callback",
    "tpool_started",
]

AsyncioHubBase = _asyncio_hub.Hub
"""eventlet's own asyncio hub class (eventlet >= 0.36).

The hub on the bridges loop subclasses it so that eventlet's own asyncio
helpers, which check ``isinstance(get_hub(), eventlet.hubs.asyncio.Hub)`` and
then use ``hub.loop`` (``await greenthread``,
``eventlet.asyncio.spawn_for_awaitable``), work unchanged on the bridges
loop.  Test: ``test_native_await_of_greenthread_works_on_the_hub``.
"""


def current_hub() -> Any:
    """This thread's eventlet hub instance, or None when none was made yet.

    ``eventlet.hubs._threadlocal.hub`` holds it (eventlet 0.36.1 - 0.41.3; the
    docstring of ``use_hub`` calls it "not part of Eventlet public API").
    ``get_hub()`` would *create* a native hub when there is none.  Test:
    ``test_detach_restores_the_previous_hub``.
    """
    return getattr(eventlet.hubs._threadlocal, "hub", None)


def set_current_hub(hub: Any) -> None:
    """Make ``hub`` this thread's eventlet hub (None: the next ``get_hub()`` makes a native one).

    Only the instance is set, never ``_threadlocal.Hub`` (the class
    ``use_hub`` chose), so other threads and later runs keep eventlet's own
    choice.  Test: ``test_detach_restores_the_previous_hub``.
    """
    local = eventlet.hubs._threadlocal
    if hub is None:
        if hasattr(local, "hub"):
            del local.hub
    else:
        local.hub = hub


def timer_callback(timer: Any) -> Callable[..., Any] | None:
    """The callable an eventlet ``Timer`` will call (None once it was called or cancelled).

    ``Timer.tpl`` is ``(cb, args, kwargs)`` and is deleted when the timer
    runs or is cancelled (eventlet 0.36.1 - 0.41.3).  The hub reads it to
    give a greenthread that is being started the context of the code that
    spawned it, and to refuse a ``Timeout`` thrown into asyncio code.
    Tests: ``test_spawned_greenthread_sees_the_spawners_context``,
    ``test_an_eventlet_timeout_in_asyncio_code_raises``.
    """
    tpl = getattr(timer, "tpl", None)
    return tpl[0] if tpl else None


def exit_has_receiver(gt: GreenThread) -> bool:
    """Whether a greenthread blocked in ``gt.wait()`` receives ``gt``'s outcome.

    ``GreenThread._exit_event._waiters``: the greenthreads blocked in
    ``wait()``, still there while the dying greenthread's exception reaches
    the hub (its links, by contrast, have already been popped by then) -
    eventlet 0.36.1 - 0.41.3.  Test:
    ``test_exception_a_greenthread_waits_for_is_not_reported``.
    """
    return bool(gt._exit_event._waiters)


_MAIN_CODE = GreenThread.main.__code__


def greenthread_in_traceback(tb: TracebackType | None) -> GreenThread | None:
    """The GreenThread whose ``main`` an exception came out of, found in its traceback.

    A greenthread that dies with an exception re-raises it from
    ``GreenThread.main(self, function, args, kwargs)`` into the hub greenlet;
    the traceback keeps that frame, whose ``self`` is the greenthread
    (eventlet 0.36.1 - 0.41.3).  Test:
    ``test_exception_nobody_waits_for_is_reported_once``.
    """
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is _MAIN_CODE:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, GreenThread):
                return candidate
        tb = tb.tb_next
    return None


def tpool_started() -> bool:
    """Whether ``eventlet.tpool`` has set up its threads and its reader greenthread.

    ``eventlet.tpool._setup_already`` (eventlet 0.36.1 - 0.41.3); ``killall()``
    resets it.  Test: ``test_tpool_works_in_every_run``.
    """
    tpool = sys.modules.get("eventlet.tpool")
    return bool(tpool is not None and getattr(tpool, "_setup_already", False))


def add_event_waiter(event: Any, waiter: Any) -> None:
    """Put ``waiter`` among the greenthreads an ``eventlet.event.Event`` wakes when sent.

    ``Event._waiters`` is a set of greenlets; ``send()`` schedules, for each,
    ``_do_send``, which calls ``waiter.switch(result)`` or ``waiter.throw(*exc)``
    if the waiter is still in the set (eventlet 0.36.1 - 0.41.3).  Tests:
    ``test_awaiting_an_event_returns_the_value_a_greenthread_sends``,
    ``test_awaiting_an_event_sent_an_exception_raises_that_exception``,
    ``test_cancelling_an_event_await_leaves_no_waiter``.
    """
    event._waiters.add(waiter)


def remove_event_waiter(event: Any, waiter: Any) -> None:
    """Take ``waiter`` out of the event's waiters again (see :func:`add_event_waiter`)."""
    event._waiters.discard(waiter)
