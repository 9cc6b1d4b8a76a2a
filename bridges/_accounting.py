"""Who holds the loop: per-framework counts and loop time, and the slowest dispatches.

One loop for every framework means one legacy handler that blocks stalls all
of them, and a team migrating wants to see how much of the work still runs
through Twisted or gevent.  The hub keeps one :class:`Accounting` object per
run, with one :class:`Meter` per framework.  Each adapter's existing dispatch
wrapper (the one place where a framework's callback crosses into user code)
counts the dispatch and, when the meter says it is due, times it::

    meter = self.meter                    # hub.accounting.meter_for("twisted"), or None
    outer = None
    if meter is not None:
        meter.count = dispatches = meter.count + 1
        if dispatches >= meter.due:
            outer = meter.enter(what)
    try:
        run()
    finally:
        if outer is not None:
            meter.exit(outer)

(``outer = meter.begin(what)`` / ``meter.end(outer)`` do the same in two
calls, for code where a few hundred nanoseconds do not matter.)

Counts are exact; loop time is *sampled*.  Reading the clock is the
expensive part of timing a dispatch: about 0.5 µs where the clock is a
system call (virtual machines), and two reads per dispatch cost 5-10% of a
Twisted echo.  So each framework's first :data:`EXACT` dispatches are timed,
then one in :data:`EVERY`, and a timed dispatch's time is added once for
each dispatch it stands for.  The sum is an estimate of the loop time that
is exact in short runs; the slowest list holds the slowest *timed*
dispatches, so one slow call among thousands of fast ones may be missed by
it, never by the blocking detector (``bridges._watchdog``), which watches
the loop from its own thread.  A timed dispatch is in the *slot* (the
accounting's ``meter``/``what``/``start``) while it runs, where the detector
reads it; the others it finds by their stack.  The slowest entries are named
lazily (through the adapter's :meth:`~bridges.Adapter.describe_dispatch`),
only when one enters the list.

asyncio's own work (task steps and callbacks) has no wrapper to hook without
a cost on every handle, and even a wrapper around the selector's ``select``
costs a few percent of a ping-pong server.  So the loop's busy time is the
loop thread's CPU time (read when the figures are), and asyncio's loop time
is what it holds beyond the other frameworks' dispatches; it has no count.
On Linux the busy time also holds the time the thread was ready to run and
waited for a CPU (the scheduler's ``schedstat``) since the figures were
first read: a timed dispatch's wall time includes the moments other
processes ran in its place, and a CPU time without them would leave asyncio
nothing on a machine short of CPU.  Reading ``schedstat`` costs a file read,
which a hub whose figures nobody reads (one per test) does not pay.
``accounting="exact"`` (``BRIDGES_ACCOUNTING=exact``) times every dispatch,
and on the stdlib loop wraps ``select`` to time every pass (the busy time is
then the loop's wall time between passes) and to count the handles each
runs (callbacks queued before the pass plus the fd events it found), which
gives asyncio a count: for a test or a profiling run, where the cost does
not matter.
"""

from __future__ import annotations

import heapq
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    import asyncio

__all__ = ["ASYNCIO", "EVERY", "EXACT", "Accounting", "Meter", "qualified_name"]

ASYNCIO = "asyncio"
"""The name asyncio's own work is accounted under."""
DEFAULT_SLOWEST = 10
"""How many of the slowest dispatches :meth:`Accounting.stats` keeps."""
EXACT = 64
"""Each framework's first dispatches are all timed."""
EVERY = 64
"""After those, one dispatch in this many is timed, and stands for them all.

A timed dispatch costs a few microseconds in a busy server, not the two
clock reads alone (its bookkeeping runs too rarely to stay in the CPU's
caches): one in 16 cost a 50-connection Twisted echo 4-5% of its CPU, one
in 64 at most 1% (docs/observability.md).
"""
_ALWAYS = 1 << 62
"""``Accounting.exact`` when every dispatch is timed."""

_perf = time.perf_counter

_Outer = Tuple[Optional["Meter"], Any, float]
"""The slot (meter, what, start) as it was before a timed dispatch entered it."""


class Meter:
    """One framework's dispatches: the count, the loop time, and which one is timed next."""

    __slots__ = ("acct", "count", "due", "name", "seconds")

    def __init__(self, acct: Accounting, name: str) -> None:
        self.acct = acct
        self.name = name
        self.count = 0
        """Dispatches begun (the adapter adds one per dispatch)."""
        self.due = 1
        """The ``count`` of the next dispatch to time."""
        self.seconds = 0.0
        """The estimated loop time of this framework's own dispatches."""

    def enter(self, what: Any, _perf: Callable[[], float] = _perf) -> _Outer:
        """The counted dispatch running ``what`` is timed: it enters the slot."""
        acct = self.acct
        outer = (acct.meter, acct.what, acct.start)
        acct.meter = self
        acct.what = what
        acct.start = _perf()
        return outer

    def exit(self, outer: _Outer) -> None:
        """The timed dispatch :meth:`enter` returned ``outer`` for has returned."""
        acct = self.acct
        acct.add_timed(self, outer)
        acct.meter, acct.what, acct.start = outer

    def begin(self, what: Any) -> Optional[_Outer]:
        """Count a dispatch running ``what``, and time it if due; pass the result to :meth:`end`."""
        self.count = count = self.count + 1
        return self.enter(what) if count >= self.due else None

    def end(self, outer: Optional[_Outer]) -> None:
        """The dispatch :meth:`begin` returned ``outer`` for has returned."""
        if outer is not None:
            self.exit(outer)


class Accounting:
    """The slot of the timed dispatch running now, and the meters of one hub's run.

    Only the loop's thread writes; :meth:`stats` may be read from any thread
    (an exporter's), and the watchdog thread reads the slot and the counts.
    """

    __slots__ = (
        "_busy_start",
        "_cpu_clock",
        "_describe",
        "_handles",
        "_loop",
        "_meters",
        "_passes",
        "_schedstat",
        "_selector",
        "_slowest",
        "_started",
        "_top",
        "_waited_start",
        "_wake",
        "busy",
        "claimed",
        "exact",
        "floor",
        "meter",
        "nested",
        "start",
        "what",
    )

    def __init__(
        self,
        describe: Callable[[str, Any], str],
        *,
        slowest: int = DEFAULT_SLOWEST,
        exact: bool = False,
    ) -> None:
        self.meter: Optional[Meter] = None
        """The meter of the timed dispatch running now (innermost), or None."""
        self.what: Any = None
        """What that dispatch runs (the adapter knows how to name it)."""
        self.start = 0.0
        """``perf_counter()`` when that dispatch began."""
        self.exact = _ALWAYS if exact else EXACT
        """Each meter times all of its first ``exact`` dispatches, then one in :data:`EVERY`."""
        self.floor = 0.0
        """A timed dispatch slower than this enters the slowest list."""
        self.claimed = 0.0
        """The estimated loop time of the dispatches that ran outside any other."""
        self.nested = 0
        """The estimated number of dispatches that ran inside another one."""
        self.busy = 0.0
        self._describe = describe
        self._meters: Dict[str, Meter] = {}
        self._top = slowest
        self._slowest: List[tuple[float, str, str]] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._selector: Any = None
        self._wake = 0.0
        self._passes = 0
        self._handles = 0
        self._started = _perf()
        self._cpu_clock: Optional[int] = None
        self._busy_start = 0.0
        self._schedstat: Optional[str] = None
        """The loop thread's ``/proc/.../schedstat`` (Linux)."""
        self._waited_start: Optional[float] = None
        """Its run-queue wait when the figures were first read, or None before."""

    @property
    def framework(self) -> Optional[str]:
        """The framework whose timed dispatch runs now, or None."""
        meter = self.meter
        return None if meter is None else meter.name

    def meter_for(self, framework: str) -> Meter:
        """The meter of ``framework`` (made on first use); adapters keep it at attach."""
        meter = self._meters.get(framework)
        if meter is None:
            meter = self._meters[framework] = Meter(self, framework)
        return meter

    def dispatches(self) -> int:
        """How many dispatches every framework began, so far (from any thread)."""
        return sum(meter.count for meter in list(self._meters.values()))

    def add_timed(self, meter: Meter, outer: _Outer) -> None:
        """``meter``'s timed dispatch (in the slot) has returned: add its time."""
        elapsed = _perf() - self.start
        count = meter.count
        weight = 1 if count <= self.exact else EVERY  # the dispatches it stands for
        meter.due = count + (1 if count < self.exact else EVERY)
        meter.seconds += elapsed * weight
        if elapsed > self.floor:
            self.keep_slow(elapsed, meter.name, self.what)
        outer_meter = outer[0]
        if outer_meter is None:
            self.claimed += elapsed * weight
        else:
            # inside another timed dispatch: its own time excludes this one's
            self.nested += weight
            outer_weight = 1 if outer_meter.count <= self.exact else EVERY
            outer_meter.seconds -= elapsed * outer_weight

    def keep_slow(self, elapsed: float, framework: str, what: Any) -> None:
        """Put a dispatch that took ``elapsed`` seconds in the slowest list, named."""
        try:
            name = self._describe(framework, what)
        except Exception:  # noqa: BLE001 - naming must never break a dispatch
            name = repr(what)
        entry = (elapsed, framework, name)
        if len(self._slowest) < self._top:
            heapq.heappush(self._slowest, entry)
        else:
            heapq.heapreplace(self._slowest, entry)
        if len(self._slowest) >= self._top:
            self.floor = self._slowest[0][0]

    # -- the loop's busy time ----------------------------------------------------

    def watch_loop(self, loop: asyncio.AbstractEventLoop, thread_ident: int) -> None:
        """Measure ``loop``'s busy time (and, exact on the stdlib loop, count its handles).

        Called on the loop's thread (``thread_ident``, the OS thread id).
        """
        self._loop = loop
        self._started = self._wake = _perf()
        selector = getattr(loop, "_selector", None)
        ready = getattr(loop, "_ready", None)
        if (
            self.exact == _ALWAYS
            and selector is not None
            and ready is not None
            and "select" not in getattr(selector, "__dict__", {})
        ):
            self._time_passes(selector, ready)
            return
        getcpuclockid = getattr(time, "pthread_getcpuclockid", None)
        if getcpuclockid is not None:
            self._cpu_clock = getcpuclockid(thread_ident)
            self._busy_start = time.clock_gettime(self._cpu_clock)
            if sys.platform.startswith("linux"):
                self._schedstat = f"/proc/self/task/{threading.get_native_id()}/schedstat"

    def _time_passes(self, selector: Any, ready: Any) -> None:
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
        self._selector = selector
        """The selector whose ``select`` is timed (exact accounting on the stdlib loop), or None."""

    def unwatch_loop(self) -> None:
        """Stop watching the loop (the hub stops); the figures stay readable."""
        if self._loop is None:
            return
        self.busy = self._busy_seconds(start_waiting=False) or 0.0
        selector, self._selector = self._selector, None
        if selector is not None:
            selector.__dict__.pop("select", None)
        self._cpu_clock = self._schedstat = None
        self._loop = None

    def _busy_seconds(self, start_waiting: bool = True) -> Optional[float]:
        if self._cpu_clock is not None:
            try:
                busy = time.clock_gettime(self._cpu_clock) - self._busy_start
            except OSError:  # the loop's thread has ended
                return self.busy
            return busy + self._waited(start_waiting)
        if self._selector is not None:  # timed passes
            return self.busy + (_perf() - self._wake)
        return self.busy if self._loop is None and self.busy else None

    def _waited(self, start: bool) -> float:
        """How long the loop's thread waited for a CPU since the figures were first read.

        ``start``: this read may be the first (the one that starts counting).
        """
        if self._schedstat is None or (self._waited_start is None and not start):
            return 0.0
        waited = _waited_seconds(self._schedstat)
        if waited is None:  # not readable here, or the thread has ended
            return 0.0
        if self._waited_start is None:
            self._waited_start = waited
        return waited - self._waited_start

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
        wall = _perf() - self._started
        busy = self._busy_seconds()
        if busy is not None:
            own = max(busy - self.claimed, 0.0)
            count = None
            if self._passes:
                count = max(self._handles - (self.dispatches() - self.nested), 0)
            frameworks[ASYNCIO] = {"count": count, "seconds": own}
        slowest = sorted(self._slowest, reverse=True)  # copies the list first: atomic
        return {
            "wall_seconds": wall,
            "busy_seconds": busy,
            "loop_passes": self._passes or None,
            "frameworks": frameworks,
            "slowest": [
                {"framework": framework, "function": name, "seconds": seconds}
                for seconds, framework, name in slowest
            ],
        }


def _waited_seconds(schedstat: str) -> Optional[float]:
    """A thread's time ready to run and waiting for a CPU, or None if unreadable.

    ``schedstat`` (Linux, ``/proc/<pid>/task/<tid>/schedstat``) holds the
    nanoseconds the thread ran, then those it waited on a run queue.
    """
    try:
        stat = os.open(schedstat, os.O_RDONLY)
        try:
            return int(os.read(stat, 128).split()[1]) / 1e9
        finally:
            os.close(stat)
    except (OSError, ValueError, IndexError):
        return None


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
