"""Who holds the loop: per-framework counts and loop time, and the slowest dispatches.

One loop for every framework means one legacy handler that blocks stalls all
of them, and a team migrating wants to see how much of the work still runs
through Twisted or gevent.  The hub keeps one :class:`Accounting` object per
run, with one :class:`Meter` per framework.  Each adapter's existing dispatch
wrapper (the one place where a framework's callback crosses into user code)
brackets the call with its meter::

    meter = self.meter                    # hub.accounting.meter("twisted"), or None
    if meter is None:
        run()
    else:
        outer = meter.begin(what)
        try:
            run()
        finally:
            meter.end(outer)

``begin`` puts the meter, what is dispatched and ``perf_counter()`` in the
*slot* (the accounting's ``meter``/``what``/``start``); ``end`` adds the time
to the meter and, only when the call was slower than the slowest ones kept
so far, names it (through the adapter's
:meth:`~bridges.Adapter.describe_dispatch`) for the slowest list.  Naming is
lazy because it is the expensive part; the two clock reads are what a
dispatch costs.  The slot is also what the blocking detector
(``bridges._watchdog``) reads from its thread.

asyncio's own work (task steps and callbacks) has no wrapper to hook without
a cost on every handle (a Python-level hook per handle measured 10% on a
``call_soon`` chain), so it is accounted per loop pass: on the stdlib loop the
selector's ``select`` is timed (two more clock reads per pass), which gives
the loop's busy time, and asyncio is what the busy time holds beyond the
other frameworks' dispatches; its count is the handles the loop ran
(callbacks queued before the pass plus the fd events it found) minus the
dispatches other frameworks claimed.  uvloop's pass is C: there the loop
thread's CPU time stands in for busy time, and asyncio has no count.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

if TYPE_CHECKING:
    import asyncio

__all__ = ["ASYNCIO", "Accounting", "Meter", "qualified_name"]

ASYNCIO = "asyncio"
"""The name asyncio's own work is accounted under."""
DEFAULT_SLOWEST = 10
"""How many of the slowest dispatches :meth:`Accounting.stats` keeps."""

_perf = time.perf_counter


class Meter:
    """One framework's dispatches: count and loop time, and the bracket around each."""

    __slots__ = ("acct", "count", "name", "seconds")

    def __init__(self, acct: Accounting, name: str) -> None:
        self.acct = acct
        self.name = name
        self.count = 0
        self.seconds = 0.0

    def begin(self, what: Any, _perf: Callable[[], float] = _perf) -> tuple[Any, Any, float]:
        """A dispatch running ``what`` starts; pass the result to :meth:`end`."""
        acct = self.acct
        outer = (acct.meter, acct.what, acct.start)
        acct.meter = self
        acct.what = what
        acct.start = _perf()
        return outer

    def end(self, outer: tuple[Any, Any, float], _perf: Callable[[], float] = _perf) -> None:
        """The dispatch begun by :meth:`begin` (which returned ``outer``) has returned."""
        acct = self.acct
        acct.last_end = now = _perf()
        elapsed = now - acct.start
        self.count += 1
        self.seconds += elapsed
        if elapsed > acct.floor:
            acct.keep_slow(elapsed, self.name, acct.what)
        outer_meter = acct.meter = outer[0]
        acct.what = outer[1]
        acct.start = outer[2]
        if outer_meter is None:
            acct.claimed += elapsed
            acct.claimed_count += 1
        else:
            outer_meter.seconds -= elapsed  # its own time excludes this dispatch's


class Accounting:
    """The slot of the dispatch running now, and the meters of one hub's run.

    Only the loop's thread writes; :meth:`stats` may be read from any thread
    (an exporter's), and the watchdog thread reads the slot.
    """

    __slots__ = (
        "_cpu_clock",
        "_cpu_start",
        "_describe",
        "_handles",
        "_loop",
        "_meters",
        "_passes",
        "_selector",
        "_slowest",
        "_started",
        "_timed",
        "_top",
        "_wake",
        "busy",
        "claimed",
        "claimed_count",
        "floor",
        "last_end",
        "meter",
        "start",
        "what",
    )

    def __init__(
        self,
        describe: Callable[[str, Any], str],
        *,
        slowest: int = DEFAULT_SLOWEST,
    ) -> None:
        self.meter: Optional[Meter] = None
        """The meter of the dispatch running now (innermost), or None."""
        self.what: Any = None
        """What that dispatch runs (the adapter knows how to name it)."""
        self.start = 0.0
        """``perf_counter()`` when that dispatch began (it also tells dispatches apart)."""
        self.last_end = 0.0
        """``perf_counter()`` when the last dispatch ended."""
        self.floor = 0.0
        """A dispatch slower than this enters the slowest list."""
        self.claimed = 0.0
        self.claimed_count = 0
        self.busy = 0.0
        self._describe = describe
        self._meters: Dict[str, Meter] = {}
        self._top = slowest
        self._slowest: List[tuple[float, float, str, str]] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._selector: Any = None
        self._timed = False
        self._wake = 0.0
        self._passes = 0
        self._handles = 0
        self._started = _perf()
        self._cpu_clock: Optional[int] = None
        self._cpu_start = 0.0

    @property
    def framework(self) -> Optional[str]:
        """The framework whose dispatch runs now, or None."""
        meter = self.meter
        return None if meter is None else meter.name

    def meter_for(self, framework: str) -> Meter:
        """The meter of ``framework`` (made on first use); adapters keep it at attach."""
        meter = self._meters.get(framework)
        if meter is None:
            meter = self._meters[framework] = Meter(self, framework)
        return meter

    def keep_slow(self, elapsed: float, framework: str, what: Any) -> None:
        """Put a dispatch that took ``elapsed`` seconds in the slowest list, named."""
        try:
            name = self._describe(framework, what)
        except Exception:  # noqa: BLE001 - naming must never break a dispatch
            name = repr(what)
        entry = (elapsed, self.last_end, framework, name)
        if len(self._slowest) < self._top:
            heapq.heappush(self._slowest, entry)
        else:
            heapq.heapreplace(self._slowest, entry)
        if len(self._slowest) >= self._top:
            self.floor = self._slowest[0][0]

    # -- asyncio's own work, per loop pass -------------------------------------

    def watch_loop(self, loop: asyncio.AbstractEventLoop, thread_ident: int) -> None:
        """Measure ``loop``'s busy time; count the handles of its passes where it can.

        Called on the loop's thread (``thread_ident``, the OS thread id).
        """
        self._loop = loop
        self._started = self._wake = _perf()
        selector = getattr(loop, "_selector", None)
        ready = getattr(loop, "_ready", None)
        if selector is None or ready is None or "select" in getattr(selector, "__dict__", {}):
            # uvloop (or a selector already watched by another hub's run): the
            # loop thread's CPU time stands in for its busy time.
            getcpuclockid = getattr(time, "pthread_getcpuclockid", None)
            if getcpuclockid is not None:
                self._cpu_clock = getcpuclockid(thread_ident)
                self._cpu_start = time.clock_gettime(self._cpu_clock)
            return
        select = selector.select

        def timed_select(timeout: Optional[float] = None) -> Any:
            # The pass that just ended was busy from the last wake-up until now.
            self.busy += _perf() - self._wake
            events = select(timeout)
            self._wake = _perf()
            self._passes += 1
            self._handles += len(ready) + len(events)
            return events

        selector.select = timed_select
        self._timed = True
        self._selector = selector

    def unwatch_loop(self) -> None:
        """Stop watching the loop (the hub stops); the figures stay readable."""
        if self._loop is None:
            return
        self.busy = self._busy_seconds() or 0.0
        selector, self._selector = self._selector, None
        if selector is not None:
            selector.__dict__.pop("select", None)
        self._cpu_clock = None
        self._timed = False
        self._loop = None

    def _busy_seconds(self) -> Optional[float]:
        if self._cpu_clock is not None:
            try:
                return time.clock_gettime(self._cpu_clock) - self._cpu_start
            except OSError:  # the loop's thread has ended
                return self.busy
        if self._timed:
            return self.busy + (_perf() - self._wake)
        return self.busy if self._loop is None and self.busy else None

    # -- reading ---------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """The figures as plain data (see :meth:`bridges.Hub.stats` for the shape)."""
        # list(): atomic under the GIL, so an exporter's thread may read while
        # the loop's thread adds a framework
        frameworks: Dict[str, Dict[str, Any]] = {
            name: {"count": meter.count, "seconds": max(meter.seconds, 0.0)}
            for name, meter in list(self._meters.items())
            if meter.count
        }
        busy = self._busy_seconds()
        if busy is not None:
            own = max(busy - self.claimed, 0.0)
            count = max(self._handles - self.claimed_count, 0) if self._passes else None
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
