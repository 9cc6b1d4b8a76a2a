"""The reactor's timers: one asyncio callback per ``DelayedCall``.

A mixin of :class:`~bridges.twisted.HubReactor`.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any, Callable

from twisted.internet.base import DelayedCall
from twisted.logger import Logger

_log = Logger(namespace="twisted.internet.base")


class Timers:
    """``callLater`` and friends of the hub's reactor (a mixin of HubReactor)."""

    # -- timers ---------------------------------------------------------------

    # One asyncio timer per DelayedCall.  The stock reactor mirrors every
    # callLater through Twisted's own heap *and* re-arms one asyncio timer for
    # the heap's head (two TimerHandles and a heap walk per call); here each
    # call is one loop callback: ``call_soon`` for a zero delay, ``call_at``
    # otherwise.  What Twisted promises is kept:
    #
    # * order: calls run in the order of their times.  A zero-delay call is
    #   queued at once, while a timed call reaches asyncio's ready queue only
    #   when the loop next looks at its timers, so before a zero-delay call
    #   runs, every due timed call with an earlier time runs first
    #   (``_timed`` is a heap of the timed calls, for that check only);
    # * ``seconds()`` stays epoch time, and a call never runs before its time
    #   (a timer that fires early, e.g. on uvloop's millisecond clock, is
    #   re-armed for the rest);
    # * DelayedCall's cancel(), reset() and delay() work as documented.

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        assert delay >= 0, f"{delay} is not greater than or equal to 0 seconds"
        call = DelayedCall(
            self.seconds() + delay,
            callable,
            args,
            kw,
            self._cancelCallLater,
            self._moveCallLaterSooner,
            seconds=self.seconds,
        )
        loop = self._hubLoop
        if loop is None:  # between runs: bind() arms it in the next run
            self._timers[call] = None
        elif delay == 0:
            self._timers[call] = loop.call_soon(self._runCall, call)
        else:
            self._timers[call] = loop.call_at(loop.time() + delay, self._runCall, call)
            self._pushTimed(call)
        return call

    def _pushTimed(self, call: DelayedCall) -> None:
        timed = self._timed
        if len(timed) > 64 and len(timed) > 2 * len(self._timers):
            # Entries of calls that ran or were cancelled are dropped lazily.
            timed[:] = [entry for entry in timed if entry[2] in self._timers]
            heapify(timed)
        heappush(timed, (call.time, next(self._sequence), call))

    def _arm(self, call: DelayedCall) -> None:
        loop = self._hubLoop
        delay = call.time - self.seconds()
        if delay <= 0:
            self._timers[call] = loop.call_soon(self._runCall, call)
        else:
            self._timers[call] = loop.call_at(loop.time() + delay, self._runCall, call)
            self._pushTimed(call)

    def _runCall(self, call: DelayedCall) -> None:
        if call.delayed_time > 0:  # DelayedCall.delay() / reset() to a later time
            call.activate_delay()
            self._arm(call)
            return
        if call.time > self.seconds():
            self._arm(call)
            return
        del self._timers[call]
        timed = self._timed
        if timed and timed[0][0] <= call.time:
            self._runEarlier(call.time)
            # The earlier calls may have cancelled this one (LoopingCall.stop(),
            # a timeout), or delayed it: it is out of _timers, so only we can tell.
            if call.cancelled:
                return
            if call.delayed_time > 0:
                call.activate_delay()
                self._arm(call)
                return
        call.called = 1
        meter = self._meter
        outer = None
        if meter is not None:  # counted; timed when due (bridges._accounting)
            meter.count = dispatches = meter.count + 1
            if dispatches >= meter.due:
                outer = meter.enter(call.func)
        try:
            call.func(*call.args, **call.kw)
        except Exception:  # noqa: BLE001 - logged, like ReactorBase.runUntilCurrent does
            _log.failure(
                "while handling timed call{creator}",
                creator=(
                    "\n C: from a DelayedCall created here:\n C:"
                    + "".join(call.creator).rstrip().replace("\n", "\n C:")
                    if call.creator
                    else ""
                ),
            )
        finally:
            if outer is not None:
                meter.exit(outer)

    def _runEarlier(self, time: float) -> None:
        """Run the due timed calls whose time is not after ``time``, in time order."""
        timed = self._timed
        while timed and timed[0][0] <= time:
            _, _, other = heappop(timed)
            handle = self._timers.get(other)
            if handle is None or other.delayed_time > 0 or other.time > time:
                continue  # ran, cancelled, unarmed, or moved later (its re-arm pushed it again)
            handle.cancel()
            self._runCall(other)

    def _cancelCallLater(self, call: DelayedCall) -> None:
        handle = self._timers.pop(call, None)
        if handle is not None:
            handle.cancel()

    def _moveCallLaterSooner(self, call: DelayedCall) -> None:
        handle = self._timers.get(call)
        if handle is not None:
            handle.cancel()
            self._arm(call)

    def _armPendingCalls(self) -> None:
        for call, handle in list(self._timers.items()):
            if handle is None:
                self._arm(call)

    def getDelayedCalls(self) -> list[DelayedCall]:
        return [call for call in self._timers if not call.cancelled]

    def timeout(self) -> float | None:
        if not self._timers:
            return None
        return max(0.0, min(call.getTime() for call in self._timers) - self.seconds())
