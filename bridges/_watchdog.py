"""The blocking detector: a watchdog thread that names a dispatch holding the loop, while it does.

asyncio's debug mode says "Executing <Handle ...> took 0.2 seconds" *after*
the callback returned, and names the hub's own dispatch callback; a call
that never returns is never reported at all.  The watchdog runs in a thread
of its own and looks at the loop from outside:

* a framework's timed dispatch is in the slot of
  :class:`~bridges._accounting.Accounting` (set by the adapter's dispatch
  wrapper): when it is still there ``slow_callback`` seconds after it began,
  it holds the loop;
* asyncio's own callbacks and task steps have no slot (hooking every handle
  costs too much): the watchdog posts a heartbeat with
  ``call_soon_threadsafe``, and a heartbeat still waiting ``slow_callback``
  seconds later, with no dispatch begun meanwhile, means the loop is held.
  Most framework dispatches are not timed (accounting samples them) and are
  caught this way too: the accounting's dispatch count tells the watchdog
  that none began since it last looked.  This way cannot tell one long
  asyncio callback from a long run of short ones; the stack says which.

Then it samples the loop thread's stack (``sys._current_frames()``, which for
gevent is the stack of the greenlet running now), finds the user's function
in it (the outermost frame that is not asyncio's, the hub's or a framework's
own code), and reports once per stall: to ``logging`` at once, from the
watchdog thread, and through the hub's error sink as a
:class:`bridges.SlowCallbackError`, which arrives when the loop runs again.
"""

from __future__ import annotations

import _thread
import logging
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Mapping, Optional

from ._accounting import ASYNCIO, Accounting, frame_name
from ._errors import SlowCallbackError

if TYPE_CHECKING:
    import asyncio
    from types import CodeType, FrameType

__all__ = ["MACHINERY", "Stall", "Watchdog", "find_blocker"]

log = logging.getLogger("bridges")
_perf = time.perf_counter

MACHINERY = frozenset(
    {
        "bridges",
        "greenlet",
        "zope",
        "selectors",
        "contextvars",
        "contextlib",
        "functools",
        "concurrent",
        "anyio",
        "sniffio",
        "_pytest",
        "pluggy",
    }
)
"""Top-level packages whose frames are never "the user's function" (plus every framework's)."""
_BOUNDARY_MODULES = frozenset({"bridges._run", "bridges._pytest.runner"})
"""Modules that run the loop: the stack below them is outside any dispatch."""


def _os_threads() -> tuple[Callable[..., Any], Callable[[float], None], Callable[[], Any]]:
    """``start_new_thread``, ``time.sleep`` and ``allocate_lock`` of the OS, not gevent's.

    After ``gevent.monkey.patch_all()`` the patched ones make greenlets, which
    run on the loop's own thread: a watchdog there could never see the loop
    blocked (and waiting for it to start would block the loop).
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return (
            monkey.get_original("_thread", "start_new_thread"),
            monkey.get_original("time", "sleep"),
            monkey.get_original("_thread", "allocate_lock"),
        )
    return _thread.start_new_thread, time.sleep, _thread.allocate_lock


class Stall:
    """What the watchdog found in the loop thread's stack."""

    __slots__ = ("framework", "function", "stack")

    def __init__(self, framework: Optional[str], function: Optional[str], stack: list[str]):
        self.framework = framework
        self.function = function
        self.stack = stack


def find_blocker(
    frame: Optional[FrameType],
    frameworks: Mapping[str, str],
    boundaries: Collection[CodeType] = (),
) -> Stall:
    """The user's function running in ``frame``'s stack, its framework, and the stack.

    Walks outwards from the innermost frame until the loop's own machinery
    (asyncio, the frames that run the loop).  The user's function is the
    outermost frame on the way that is neither a framework's nor the hub's
    (``myapp.proto.Echo.dataReceived`` rather than ``socket.recv`` inside it,
    or the Twisted frames around it); its framework is the first
    framework's frame outside it (``frameworks`` maps top-level package
    names to framework names).
    """
    machinery = MACHINERY.union(frameworks)
    frames: list[FrameType] = []
    user: Optional[FrameType] = None
    framework: Optional[str] = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "") or ""
        top = module.partition(".")[0]
        if top == "asyncio" or module in _BOUNDARY_MODULES or frame.f_code in boundaries:
            break
        frames.append(frame)
        if top not in machinery:
            user, framework = frame, None
        elif user is not None and framework is None and top in frameworks:
            framework = frameworks[top]
        frame = frame.f_back
    summary = traceback.StackSummary.extract((f, f.f_lineno) for f in reversed(frames))
    return Stall(framework, frame_name(user) if user is not None else None, summary.format())


class Watchdog:
    """The thread that watches one hub's loop for a dispatch that holds it too long."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        accounting: Accounting,
        threshold: float,
        thread_ident: int,
        frameworks: Mapping[str, str],
        describe: Callable[[str, Any], str],
        report: Callable[[SlowCallbackError], None],
        boundaries: Iterable[CodeType] = (),
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.interval = min(max(threshold / 4, 0.002), 0.25)
        self.stalls = 0
        self.listeners: list[Callable[[SlowCallbackError], None]] = []
        """Called from the watchdog thread with each report, as soon as it is made."""
        self._acct = accounting
        self._ident = thread_ident
        self._frameworks = dict(frameworks)
        self._describe = describe
        self._report = report
        self._boundaries = frozenset(boundaries)
        start_thread, self._sleep, allocate_lock = _os_threads()
        self._start_thread = start_thread
        self._stopped = False
        self._running = allocate_lock()
        """Held by the watchdog's thread while it runs: :meth:`stop` waits on it."""
        self._dispatches = -1
        """The accounting's dispatch count at the last look."""
        self._changed = 0.0
        """When a look last saw a dispatch begin or the last one end."""
        self._slot_busy = False
        self._reported = -1.0
        """``_changed`` when the last stall was reported: one report per stall."""
        self._beat_sent: Optional[float] = None
        self._beat_ran = False
        """Set by the heartbeat when the loop ran it: the loop was free since the last look."""

    def start(self) -> None:
        self._running.acquire()
        self._start_thread(self._run, ())

    def stop(self) -> None:
        """Stop the thread and wait for it (bounded: it wakes every ``interval``)."""
        self._stopped = True
        if self._running.acquire(timeout=max(1.0, 2 * self.interval)):
            self._running.release()

    # -- the watchdog thread ---------------------------------------------------

    def _run(self) -> None:
        try:
            self._watch()
        finally:
            self._running.release()

    def _watch(self) -> None:
        while True:
            self._sleep(self.interval)
            if self._stopped:
                return
            try:
                self._check()
            except RuntimeError:  # the loop closed under us: the hub is gone
                return
            except Exception:
                log.exception("bridges: the slow callback watchdog failed; it stops")
                return

    def _check(self) -> None:
        acct = self._acct
        meter, what, start = acct.meter, acct.what, acct.start
        dispatches = acct.dispatches()
        if acct.meter is not meter or acct.start != start:
            return  # the slot changed while we read it: look again next time
        now = _perf()
        if dispatches != self._dispatches or (meter is None and self._slot_busy) or self._beat_ran:
            # A dispatch began, a timed one ended, or the loop ran the heartbeat
            # (it was free) since the last look.  Most
            # dispatches are not timed (bridges._accounting): this look is the
            # earliest the watchdog knows the loop to be in its present state,
            # so what it measures from here is a lower bound, never a false alarm.
            self._dispatches = dispatches
            self._beat_ran = False
            self._changed = now
        self._slot_busy = meter is not None
        if self._changed == self._reported:
            return  # nothing happened since the last report: the same stall
        if meter is not None:
            held = now - start  # a timed dispatch: it knows when it began
            if held >= self.threshold:
                self._reported = self._changed
                self._stall(meter.name, what, held)
            return
        sent = self._beat_sent
        if sent is None:
            self._beat_sent = now
            self.loop.call_soon_threadsafe(self._beat)
            return
        held = now - max(sent, self._changed)
        if held >= self.threshold:
            self._reported = self._changed
            self._stall(None, None, held)

    def _beat(self) -> None:
        self._beat_sent = None
        self._beat_ran = True

    def _stall(self, framework: Optional[str], what: Any, seconds: float) -> None:
        frame = sys._current_frames().get(self._ident)
        found = find_blocker(frame, self._frameworks, self._boundaries)
        del frame
        function = found.function
        if function is None and framework is not None:
            function = self._describe(framework, what)
        framework = framework or found.framework or ASYNCIO
        function = function or "(unknown: no Python frame of user code was running)"
        self.stalls += 1
        stack = "".join(found.stack).rstrip("\n")
        message = (
            f"bridges: {function} ({framework}) has held the event loop for "
            f"{seconds:.3f}s (slow_callback={self.threshold:g}s); every framework on the hub "
            "waits until it returns. Where it was when the threshold passed (innermost last):\n"
            f"{stack}\n"
            "Move blocking work off the loop (loop.run_in_executor, Twisted's deferToThread, "
            "gevent's threadpool) or split it up; raise slow_callback if this much is expected."
        )
        error = SlowCallbackError(
            message,
            framework=framework,
            function=function,
            seconds=seconds,
            stack=found.stack,
        )
        log.warning("%s", message)
        for listener in list(self.listeners):
            listener(error)
        self._report(error)
