"""Who holds the loop: per-framework counts and loop time, and the slowest dispatches.

One loop for every framework means one legacy handler that blocks stalls all
of them, and a team migrating wants to see how much of the work still runs
through Twisted or gevent.  The hub keeps one :class:`Accounting` object per
run; each adapter's existing dispatch wrapper (the one place where a
framework's callback crosses into user code) brackets the call::

    acct = self.hub.accounting            # None when accounting is off
    if acct is None:
        run()
    else:
        outer = acct.begin("twisted", what)
        try:
            run()
        finally:
            acct.end(outer)

``begin`` stores the framework, what is dispatched and ``perf_counter()`` in
the *slot* (three attribute stores and one clock read); ``end`` adds the time
to the framework's totals and, only when the call was slower than the
slowest ones kept so far, names it (through the adapter's
:meth:`~bridges.Adapter.describe_dispatch`) for the slowest list.  Naming is
lazy because it is the expensive part.  The slot is also what the blocking
detector (``bridges._watchdog``) reads from its thread.

asyncio's own work (task steps and callbacks) has no wrapper to hook without
a cost on every handle (a Python-level hook per handle measured 10% on a
``call_soon`` chain), so it is accounted per loop pass: on the stdlib loop the
selector's ``select`` is timed, which gives the loop's busy time, and asyncio
is what the busy time holds beyond the other frameworks' dispatches; its
count is the handles the loop ran (callbacks queued before the pass plus the
fd events it found) minus the dispatches other frameworks claimed.  uvloop's
pass is C: there the loop thread's CPU time stands in for busy time.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

if TYPE_CHECKING:
    import asyncio

__all__ = ["ASYNCIO", "Accounting", "qualified_name"]

ASYNCIO = "asyncio"
"""The name asyncio's own work is accounted under."""
DEFAULT_SLOWEST = 10
"""How many of the slowest dispatches :meth:`Accounting.stats` keeps."""

_perf = time.perf_counter


class Accounting:
    """The slot of the dispatch running now, and the totals of one hub's run.

    Only the loop's thread writes; :meth:`stats` is meant for that thread too
    (``hub.stats()``), and the watchdog thread only reads the slot.
    """

    __slots__ = (
        "_busy",
        "_claimed",
        "_claimed_count",
        "_cpu_clock",
        "_cpu_start",
        "_describe",
        "_floor",
        "_handles",
        "_loop",
        "_measured",
        "_next",
        "_passes",
        "_selector",
        "_slowest",
        "_started",
        "_top",
        "_totals",
        "_wake",
        "framework",
        "last_end",
        "seq",
        "start",
        "what",
    )

    def __init__(
        self,
        describe: Callable[[str, Any], str],
        *,
        slowest: int = DEFAULT_SLOWEST,
    ) -> None:
        self.framework: Optional[str] = None
        """The framework whose dispatch runs now (innermost), or None."""
        self.what: Any = None
        """What that dispatch runs (the adapter knows how to name it)."""
        self.start = 0.0
        """``perf_counter()`` when that dispatch began."""
        self.seq = 0
        """Which dispatch runs now: a new number per dispatch."""
        self.last_end = 0.0
        """``perf_counter()`` when the last dispatch ended."""
        self._describe = describe
        self._totals: Dict[str, List[float]] = {}
        self._claimed = 0.0
        self._claimed_count = 0
        self._top = slowest
        self._slowest: List[tuple[float, int, str, str]] = []
        self._floor = 0.0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._selector: Any = None
        self._busy = 0.0
        self._wake = 0.0
        self._passes = 0
        self._handles = 0
        self._next = 0
        self._measured = False
        self._started = _perf()
        self._cpu_clock: Optional[int] = None
        self._cpu_start = 0.0

    # -- dispatches (the adapters' hook) --------------------------------------

    def begin(self, framework: str, what: Any) -> tuple[Any, ...]:
        """A dispatch of ``framework`` running ``what`` starts; pass the result to :meth:`end`."""
        outer = (self.framework, self.what, self.start, self.seq)
        self.seq = self._next = self._next + 1
        self.framework = framework
        self.what = what
        self.start = _perf()
        return outer

    def end(self, outer: tuple[Any, ...]) -> None:
        """The dispatch begun by :meth:`begin` (which returned ``outer``) has returned."""
        self.last_end = now = _perf()
        elapsed = now - self.start
        framework = self.framework
        totals = self._totals.get(framework)  # type: ignore[arg-type]
        if totals is None:
            totals = self._totals[framework] = [0, 0.0]  # type: ignore[index]
        totals[0] += 1
        totals[1] += elapsed
        if elapsed > self._floor:
            self._keep_slow(elapsed, framework, self.what)  # type: ignore[arg-type]
        self.framework, self.what, self.start, self.seq = outer
        if outer[0] is None:
            self._claimed += elapsed
            self._claimed_count += 1
        else:
            # The outer dispatch's own time excludes this one's.
            outer_totals = self._totals.get(outer[0])
            if outer_totals is None:
                outer_totals = self._totals[outer[0]] = [0, 0.0]
            outer_totals[1] -= elapsed

    def _keep_slow(self, elapsed: float, framework: str, what: Any) -> None:
        try:
            name = self._describe(framework, what)
        except Exception:  # noqa: BLE001 - naming must never break a dispatch
            name = repr(what)
        entry = (elapsed, self._claimed_count, framework, name)
        if len(self._slowest) < self._top:
            heapq.heappush(self._slowest, entry)
        else:
            heapq.heapreplace(self._slowest, entry)
        if len(self._slowest) >= self._top:
            self._floor = self._slowest[0][0]

    # -- asyncio's own work, per loop pass -------------------------------------

    def watch_loop(self, loop: asyncio.AbstractEventLoop, thread_ident: int) -> None:
        """Time ``loop``'s passes: its selector's ``select`` on the stdlib loop.

        Called on the loop's thread (``thread_ident``, the OS thread id).
        """
        self._loop = loop
        self._started = self._wake = _perf()
        self._measured = True
        selector = getattr(loop, "_selector", None)
        ready = getattr(loop, "_ready", None)
        if selector is None or ready is None or "select" in getattr(selector, "__dict__", {}):
            # uvloop (or a selector already watched): the loop thread's CPU time.
            getcpuclockid = getattr(time, "pthread_getcpuclockid", None)
            if getcpuclockid is not None:
                self._cpu_clock = getcpuclockid(thread_ident)
                self._cpu_start = time.clock_gettime(self._cpu_clock)
            else:
                self._measured = False
            return
        select = selector.select

        def timed_select(timeout: Optional[float] = None) -> Any:
            # The pass that just ended was busy from the last wake-up until now.
            now = _perf()
            self._busy += now - self._wake
            events = select(timeout)
            self._wake = _perf()
            self._passes += 1
            self._handles += len(ready) + len(events)
            return events

        selector.select = timed_select
        self._selector = selector

    def unwatch_loop(self) -> None:
        """Stop timing the loop's passes (the hub stops); the totals stay readable."""
        if self._loop is None:
            return
        selector, self._selector = self._selector, None
        if selector is not None:
            self._busy += _perf() - self._wake
            selector.__dict__.pop("select", None)
        elif self._cpu_clock is not None:
            self._busy = time.clock_gettime(self._cpu_clock) - self._cpu_start
            self._cpu_clock = None
        self._loop = None

    def _busy_seconds(self) -> Optional[float]:
        if self._selector is not None:
            return self._busy + (_perf() - self._wake)
        if self._cpu_clock is not None:
            return time.clock_gettime(self._cpu_clock) - self._cpu_start
        return self._busy if self._measured else None

    # -- reading ---------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """The totals as plain data (see :meth:`bridges.Hub.stats` for the shape)."""
        frameworks: Dict[str, Dict[str, Any]] = {
            name: {"count": int(count), "seconds": max(seconds, 0.0)}
            # list(): atomic under the GIL, so an exporter's thread may read while
            # the loop's thread adds a framework
            for name, (count, seconds) in list(self._totals.items())
        }
        busy = self._busy_seconds()
        if busy is not None:
            own = max(busy - self._claimed, 0.0)
            count = max(self._handles - self._claimed_count, 0) if self._passes else None
            frameworks[ASYNCIO] = {"count": count, "seconds": own}
        slowest = sorted(self._slowest, reverse=True)  # copies the list first: atomic
        return {
            "wall_seconds": _perf() - self._started,
            "busy_seconds": busy,
            "loop_passes": self._passes or None,
            "frameworks": frameworks,
            "slowest": [
                {"framework": framework, "function": name, "seconds": seconds}
                for seconds, _, framework, name in slowest
            ],
        }


def qualified_name(obj: Any) -> str:
    """``module.Class.method`` of a function, bound method, partial, class or object.

    The name users search their code for: a bound method is named after the
    class that defines it, a ``functools.partial`` after what it wraps, an
    object that is not callable after its class.
    """
    seen = 0
    while seen < 8:
        seen += 1
        inner = getattr(obj, "func", None)  # functools.partial
        if inner is not None and callable(inner) and not hasattr(obj, "__qualname__"):
            obj = inner
            continue
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            obj = wrapped
            continue
        break
    func = getattr(obj, "__func__", obj)
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if qualname is None:
        cls = type(obj)
        qualname, module = cls.__qualname__, cls.__module__
    return f"{module}.{qualname}" if module else str(qualname)


def frame_name(frame: Any) -> str:
    """``module.Class.function`` of the code running in ``frame``."""
    code = frame.f_code
    module = frame.f_globals.get("__name__", "?")
    qualname = getattr(code, "co_qualname", None)  # Python 3.11+
    if qualname is None:
        qualname = code.co_name
        owner = frame.f_locals.get("self") if code.co_argcount else None
        if owner is not None and code.co_varnames[:1] == ("self",):
            qualname = f"{type(owner).__qualname__}.{qualname}"
    return f"{module}.{qualname}"
