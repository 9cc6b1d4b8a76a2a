"""The gevent adapter: a fresh gevent hub for this thread, bound to the bridges hub's loop."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Sequence

from .._adapter import Adapter, LeakFinder

if TYPE_CHECKING:
    import gevent.hub

    from .._hub import Hub
    from ._loop import AsyncioLoop

__all__ = ["GeventAdapter"]


class GeventAdapter(Adapter):
    """gevent on the hub: greenlets and asyncio tasks in one thread, on one poller."""

    name: ClassVar[str] = "gevent"
    requires: ClassVar[str] = "gevent"
    # Among the first to attach: it owns a low level (the thread's greenlet hub).
    order: ClassVar[int] = 20
    install_hint: ClassVar[str] = "pip install 'tulip-bridges[gevent]'"

    ghub: Any
    """gevent's hub greenlet of this hub (a ``_BridgeHub``)."""
    gloop: AsyncioLoop
    """The gevent loop that maps gevent's watchers onto the asyncio loop."""
    executor: Any = None
    """The real-thread executor installed under ``patch_all``, or None."""
    previous: gevent.hub.Hub | None = None
    """This thread's native gevent hub, set aside while the hub runs."""
    portals: bool = False
    """Whether this hub's tasks get portals (bridges._portal) while gevent is attached."""

    @classmethod
    def converters(cls) -> dict[type, Callable[[Any], asyncio.Future[Any]]]:
        from ._api import _CONVERTERS

        return dict(_CONVERTERS)

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self._watch: Any = None
        self._restore_child_watcher: Callable[[], None] | None = None

    def describe_dispatch(self, what: Any) -> str:
        """A hub pass runs many greenlets: the blocking detector names the one that blocks."""
        if what is getattr(self, "gloop", None):
            return "gevent hub pass (greenlets and gevent callbacks)"
        return "gevent greenlet resumed from asyncio (bg.wait)"

    def attach(self) -> None:
        """Install a fresh gevent hub for this thread, bound to the hub's loop."""
        from gevent._hub_local import set_hub

        from ._api import _BridgeHub
        from ._loop import AsyncioLoop

        hub = self.hub
        _use_original_selector(hub.loop)
        self.previous = _idle_native_hub()
        gloop = AsyncioLoop(aio_loop=hub.loop, fd_registry=hub)
        ghub = _BridgeHub(gloop, hub)
        gloop.bind_hub(ghub)
        gloop.on_late_link = ghub.unreceived.linked_after_death
        self.ghub, self.gloop = ghub, gloop
        self.executor = _use_real_thread_executor(hub.loop)
        self._restore_child_watcher = _watch_asyncio_children(gloop, hub.loop)
        set_hub(ghub)
        if getattr(hub, "portals", True):
            from .. import _portal

            _portal.enable(hub.loop)
            self.portals = True

    def detach(self) -> Awaitable[None]:
        """Kill the greenlets of this hub (bounded by the hub), then destroy the gevent hub."""
        return self._detach()

    async def _detach(self) -> None:
        import gevent

        from .._convert import to_future
        from ._compat import existing_threadpool

        try:
            if self.portals:
                from .. import _portal

                await _portal.end(self.hub.loop)
            alive = self.greenlets()
            if alive:
                gevent.killall(alive, block=False)
                ends = [to_future(g) for g in alive]
                await asyncio.wait(ends)
                # Waiting here is what receives these greenlets' outcomes, so an
                # error one raised while it was killed (in a finally) is ours to report.
                for glet, end in zip(alive, ends):
                    if not end.cancelled() and end.exception() is not None:
                        self.report(
                            end.exception(),
                            f"bridges: unhandled error in gevent: {glet!r} failed while the "
                            "hub stopped it",
                        )
            pool = existing_threadpool(self.ghub)
            if pool is not None:
                # Killing gevent's thread pool waits for its threads (a blocking
                # gevent call): do it in a greenlet, before the hub goes away.
                await to_future(gevent.spawn(pool.kill))
        finally:
            self.ghub.unreceived.flush()
            self._destroy()

    def _destroy(self) -> None:
        from gevent._hub_local import get_hub_if_exists, set_hub
        from greenlet import getcurrent

        from ._compat import clear_default_executor

        restore_child_watcher, self._restore_child_watcher = self._restore_child_watcher, None
        if restore_child_watcher is not None:
            restore_child_watcher()
        if self.executor is not None:
            # asyncio's shutdown_default_executor() would join it from a *patched*
            # thread (a greenlet of a gevent hub that no longer runs).
            self.executor.shutdown(wait=True)
            clear_default_executor(self.hub.loop, self.executor)
        ghub, gloop = self.ghub, self.gloop
        if ghub.loop is not None:
            ghub.parent = getcurrent()
            ghub.destroy(destroy_loop=True)
            # Sockets made while we ran keep a reference to this hub and may be
            # closed later (asyncio closes its transports after the adapters
            # detach); the destroyed loop answers them harmlessly.
            ghub.loop = gloop
        previous = self.previous
        if get_hub_if_exists() in (ghub, None):
            set_hub(previous if previous is not None and previous.loop is not None else None)

    def greenlets(self) -> list[Any]:
        """The greenlets of this hub still alive.

        gevent keeps no registry of its greenlets; the loop remembers the ones
        it started (or was asked to start), and those still alive are on this hub.
        """
        from gevent.greenlet import Greenlet

        ghub = self.ghub
        return [
            glet
            for glet in self.gloop.started_greenlets()
            if isinstance(glet, Greenlet) and glet.parent is ghub
        ]

    # -- the pytest plugin -------------------------------------------------

    def leak_finders(self) -> Sequence[LeakFinder]:
        from ._pytest import GreenletWatch

        watch = GreenletWatch()
        return (LeakFinder("greenlet", watch.live, close=watch.close),)

    def wrap_plain_test(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        # A greenlet gives a plain test something to block: gevent.sleep,
        # gevent sockets and bg.wait(aw) suspend only the test's greenlet.
        from ._pytest import in_greenlet

        return lambda: in_greenlet(func, kwargs)

    @classmethod
    def waiting_in(cls, task: asyncio.Task[Any]) -> list[str] | None:
        from ._pytest import greenlet_places

        return greenlet_places(task)


def _idle_native_hub() -> gevent.hub.Hub | None:
    """This thread's native gevent hub, which we set aside while we run.

    It is kept (not destroyed) because objects made on it - after
    ``patch_all``, the sockets of asyncio's own self-pipe - still refer to it
    and must be able to close; it is restored at detach.
    """
    from gevent._hub_local import get_hub_if_exists

    from ._api import GeventHubBusyError

    existing = get_hub_if_exists()
    if existing is None:
        return None
    loop = existing.loop
    if loop is not None and getattr(loop, "activecnt", 0) > 0:
        raise GeventHubBusyError(
            f"this thread already runs a native gevent hub ({existing!r}) with pending work "
            "(started servers, timers or greenlets). The bridges hub needs gevent's hub for "
            "itself. Start gevent work after bridges.run(...) begins (inside main), or "
            "finish/kill it (gevent.killall, server.stop()) before calling bridges.run."
        )
    return existing


def _use_original_selector(loop: asyncio.AbstractEventLoop) -> None:
    """Swap gevent's patched selector out of an asyncio loop made after ``patch_all``.

    ``monkey.patch_all()`` replaces ``selectors.DefaultSelector`` with gevent's,
    which blocks by switching to gevent's hub: an asyncio loop created after
    patching would wait on gevent, which now waits on asyncio.
    """
    from ._compat import original_attr, replace_selector

    selector = getattr(loop, "_selector", None)
    if selector is None or not type(selector).__module__.startswith("gevent"):
        return
    # Closing gevent's selector stops the watchers it left on this thread's native hub.
    replace_selector(loop, original_attr("selectors", "DefaultSelector")())


def _use_real_thread_executor(loop: asyncio.AbstractEventLoop) -> Any:
    """Under ``patch_all`` asyncio's default executor would run greenlets, not threads."""
    from gevent import monkey

    if not monkey.is_module_patched("threading") or not hasattr(loop, "_default_executor"):
        # uvloop keeps its executor where we cannot clear it again at detach
        # (see _release_executor); there asyncio's executor stays as patched.
        return None
    from ._executor import RealThreadExecutor

    executor = RealThreadExecutor()
    loop.set_default_executor(executor)
    return executor


def _watch_asyncio_children(
    gloop: AsyncioLoop, loop: asyncio.AbstractEventLoop
) -> Callable[[], None] | None:
    """Under ``patch_all`` asyncio's child watcher would wait on gevent from a loop callback."""
    if sys.version_info >= (3, 14):
        return None  # asyncio has no child watchers any more
    from ._subprocess import watch_asyncio_children

    return watch_asyncio_children(gloop, loop)
