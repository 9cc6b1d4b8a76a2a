"""What eventlet holds on one bridges hub, and attaching/detaching it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable

from eventlet.greenthread import GreenThread, kill
from eventlet.greenthread import spawn as spawn_greenthread
from greenlet import GreenletExit

from .._convert import to_future
from .._errors import BridgeError
from . import _compat
from ._hub import LoopHub

if TYPE_CHECKING:
    from .._hub import Hub

NAME = "eventlet"


class EventletState:
    """The eventlet hub installed for this thread while a bridges hub runs, and what it replaced."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.ehub = LoopHub(hub.loop, hub, self._report)
        self.previous: Any = None

    def _report(self, exc: BaseException, message: str) -> None:
        self.hub.report(exc, message)

    def attach(self) -> None:
        self.previous = _compat.current_hub()
        _compat.set_current_hub(self.ehub)

    def detach(self) -> Awaitable[None] | None:
        if not self.ehub.live_greenthreads():
            self._destroy()
            return None
        return self._kill_then_destroy()

    async def _kill_then_destroy(self) -> None:
        try:
            if _compat.tpool_started():
                # tpool's reader greenthread and pipe live on this hub: stop its
                # threads (from a greenthread, as its killall must run) so that the
                # next hub sets it up again.
                await to_future(spawn_greenthread(_tpool_killall))
            alive = self.ehub.live_greenthreads()
            threads = [gt for gt in alive if isinstance(gt, GreenThread)]
            ends = [to_future(gt) for gt in threads]
            for glet in alive:
                self.ehub.run_from_asyncio(kill, glet)
            if ends:
                await asyncio.wait(ends)
            for gt, end in zip(threads, ends):
                if not end.cancelled() and not isinstance(end.exception(), GreenletExit):
                    self.hub.report(
                        end.exception(),
                        f"bridges: unhandled error in eventlet: {gt!r} failed while the hub "
                        "stopped it",
                    )
        finally:
            self._destroy()

    def _destroy(self) -> None:
        self.hub.state.pop(NAME, None)
        self.ehub.destroy()
        if _compat.current_hub() is self.ehub:
            _compat.set_current_hub(self.previous)


def current_state() -> EventletState:
    from .._hub import current_hub

    state = current_hub().state.get(NAME)
    if state is None:
        raise BridgeError(
            "eventlet is not attached to the running hub. Ask for it: "
            "bridges.run(main, frameworks=[..., 'eventlet']) or "
            "bridges.Hub(frameworks=[..., 'eventlet'])."
        )
    return state  # type: ignore[no-any-return]


def attach(hub: Hub) -> None:
    state = EventletState(hub)
    state.attach()
    hub.state[NAME] = state


def detach(hub: Hub) -> Awaitable[None] | None:
    state = hub.state.get(NAME)
    if state is None:
        return None
    return state.detach()  # type: ignore[no-any-return]


def _tpool_killall() -> None:
    from eventlet import tpool

    tpool.killall()
