"""Helpers for the Twisted adapter's tests: run on a fresh hub, collect what the hub reported."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from twisted.internet.base import ReactorBase

import bridges
from bridges.twisted._reactor import HubReactor


def run_twisted(
    main: Callable[..., Awaitable[Any]], *args: Any, loop_factory: Any = None, **kwargs: Any
) -> Any:
    """``bridges.run`` with only Twisted attached (a new loop, the same process-global reactor)."""
    return bridges.run(main, *args, frameworks=["twisted"], loop_factory=loop_factory, **kwargs)


def reactor() -> Any:
    """The installed reactor; call it only on the hub (an early import installs epoll's)."""
    from twisted.internet import reactor as installed

    return installed


LOOPS = ["asyncio", "uvloop"]
"""Loop factories every lifecycle test runs on."""


class StandaloneHubReactor(HubReactor):
    """The hub's reactor, running itself: for Twisted's own ReactorBuilder test suites.

    Those suites build a reactor, then call ``run()``, ``stop()``, ``crash()``
    and ``iterate()`` on it, as a program that owns its reactor would.  This
    subclass enters a real :class:`bridges.Hub` on a new asyncio loop and
    drives that loop the way Twisted's stock asyncio reactor does, so the
    suites exercise everything HubReactor changes (timers, fd registration
    through the hub, soon-write, the cached log context, the thread pool).
    """

    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    _previous: StandaloneHubReactor | None = None

    def __init__(self) -> None:
        previous = StandaloneHubReactor._previous
        if previous is not None and not previous._loop.is_running():
            previous._loop.close()
        loop = type(self).loop_factory()
        hub = bridges.Hub(frameworks=None)

        async def enter() -> None:
            await hub.__aenter__()

        loop.run_until_complete(enter())
        self._loop = loop
        StandaloneHubReactor._previous = self
        super().__init__(hub)

    def run(self, installSignalHandlers: bool = True) -> None:
        self.startRunning(installSignalHandlers=installSignalHandlers)
        self._loop.run_forever()
        if self._justStopped:
            self._justStopped = False
        # What HubReactor.shutdown() does in the hub's stop sequence: wait for
        # the pool threads, joined off the loop's thread.
        if self._poolStopped:
            self._loop.run_until_complete(asyncio.wait(self._poolStopped, timeout=10))
            self._poolStopped = []

    def stop(self) -> None:
        ReactorBase.stop(self)
        self.callLater(0, self._fireShutdownIfStopped)

    def _fireShutdownIfStopped(self) -> None:
        if self._justStopped:
            self._justStopped = False
            self.fireSystemEvent("shutdown")

    def crash(self) -> None:
        ReactorBase.crash(self)
        self._loop.stop()

    def iterate(self, delay: float = 0.0) -> None:
        self._loop.call_later(delay + 0.01, self._loop.stop)
        self._loop.run_forever()


class StandaloneHubReactorOnUvloop(StandaloneHubReactor):
    """The same, on uvloop."""

    @staticmethod
    def loop_factory() -> asyncio.AbstractEventLoop:  # type: ignore[override]
        import uvloop

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
