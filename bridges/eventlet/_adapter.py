"""The eventlet adapter: this thread's eventlet hub becomes one built on the bridges hub's loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Sequence

from .._adapter import Adapter, LeakFinder

if TYPE_CHECKING:
    from ._hub import LoopHub

__all__ = ["EventletAdapter"]


class EventletAdapter(Adapter):
    """eventlet on the hub: greenthreads and asyncio tasks in one thread, on one loop."""

    name: ClassVar[str] = "eventlet"
    requires: ClassVar[str] = "eventlet"
    # Among the first to attach: it owns a low level (the thread's greenlet hub).
    order: ClassVar[int] = 25
    install_hint: ClassVar[str] = "pip install 'tulip-bridges[eventlet]'"

    ehub: LoopHub
    """eventlet's hub on this bridges hub."""
    previous: Any = None
    """This thread's eventlet hub before attach (restored at detach), or None."""
    executor: Any = None
    """The real-thread executor installed under ``monkey_patch()``, or None."""
    portals: bool = False
    """Whether this hub's tasks get portals (bridges._portal) while eventlet is attached."""

    @classmethod
    def converters(cls) -> dict[type, Callable[[Any], asyncio.Future[Any]]]:
        from ._api import CONVERTERS

        return dict(CONVERTERS)

    def describe_dispatch(self, what: Any) -> str:
        """A hub pass runs many greenthreads: the blocking detector names the one that blocks."""
        if what is getattr(self, "ehub", None):
            return "eventlet hub pass (greenthreads, timers and fd events)"
        return "eventlet greenthread resumed from asyncio"

    def attach(self) -> None:
        """Make this thread's eventlet hub one that runs on the hub's loop."""
        from . import _compat, _patching
        from ._hub import LoopHub

        _patching.refuse_mixed_patching(self.hub)
        _patching.use_original_selector(self.hub.loop)
        self.ehub = LoopHub(self.hub.loop, self.hub, self._report)
        self.previous = _compat.current_hub()
        self.executor = _patching.use_real_thread_executor(self.hub.loop)
        _compat.set_current_hub(self.ehub)
        if getattr(self.hub, "portals", True):
            from .. import _portal

            _portal.enable(self.hub.loop)
            self.portals = True

    def _report(self, exc: BaseException, message: str) -> None:
        self.report(exc, message)

    def detach(self) -> Awaitable[None] | None:
        """Kill the greenthreads of this hub (bounded by the hub), then release the hub."""
        from . import _compat

        if not self.portals and not self.ehub.live_greenthreads() and not _compat.tpool_started():
            self._destroy()
            return None
        return self._kill_then_destroy()

    async def _kill_then_destroy(self) -> None:
        from eventlet.greenthread import GreenThread, kill
        from eventlet.greenthread import spawn as spawn_greenthread
        from greenlet import GreenletExit

        from .._convert import to_future
        from . import _compat

        try:
            if self.portals:
                from .. import _portal

                await _portal.end(self.hub.loop)
            if _compat.tpool_started():
                # tpool's threads, pipe and reader greenthread belong to this hub:
                # stop them (killall must run in a greenthread) so that the next
                # hub sets tpool up again.
                await to_future(spawn_greenthread(_tpool_killall))
            alive = self.ehub.live_greenthreads()
            threads = [gt for gt in alive if isinstance(gt, GreenThread)]
            ends = [to_future(gt) for gt in threads]
            for glet in alive:
                self.ehub.run_from_asyncio(kill, glet)
            if ends:
                await asyncio.wait(ends)
            # Waiting here is what receives these greenthreads' outcomes, so an
            # error one raised while it was killed (in a finally) is ours to report.
            for gt, end in zip(threads, ends):
                if end.cancelled() or isinstance(end.exception(), GreenletExit):
                    continue
                self.report(
                    end.exception(),
                    f"bridges: unhandled error in eventlet: {gt!r} failed while the hub stopped it",
                )
        finally:
            self._destroy()

    def _destroy(self) -> None:
        from . import _compat, _patching

        self.ehub.destroy()
        if self.executor is not None:
            _patching.release_executor(self.hub.loop, self.executor)
        if _compat.current_hub() is self.ehub:
            _compat.set_current_hub(self.previous)

    # -- the pytest plugin -------------------------------------------------

    def leak_finders(self) -> Sequence[LeakFinder]:
        return (LeakFinder("eventlet greenthread", self.ehub.live_greenthreads),)

    def wrap_plain_test(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        # A greenthread gives a plain test something to block: eventlet.sleep,
        # green sockets and be.wait(aw) suspend only the test's greenthread.
        from ._api import in_greenthread

        return lambda: in_greenthread(func, kwargs)


def _tpool_killall() -> None:
    from eventlet import tpool

    tpool.killall()
