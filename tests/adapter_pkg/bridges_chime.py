"""The bridges adapter of chime, registered through the "bridges.adapters" entry point group.

It is what a third-party adapter looks like: a :class:`bridges.Adapter`
subclass whose module imports without the framework, whose ``attach``
installs what it patches and whose ``detach`` removes it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, ClassVar, Optional, Sequence

import bridges


def _bell_to_future(bell: Any) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    bell.on_ring(lambda value: future.done() or future.set_result(value))
    return future


class _HubScheduler:
    def __init__(self, adapter: ChimeAdapter) -> None:
        self.adapter = adapter

    def call_later(self, delay: float, func: Callable[[], None]) -> Any:
        handles = self.adapter.handles

        def fire() -> None:
            handles.discard(handle)
            func()

        handle = self.adapter.hub.loop.call_later(delay, fire)
        handles.add(handle)
        return handle


class ChimeAdapter(bridges.Adapter):
    name: ClassVar[str] = "chime"
    requires: ClassVar[str] = "chime"
    order: ClassVar[int] = 60
    install_hint: ClassVar[str] = "pip install bridges-chime"

    previous: Any = None
    handles: set[asyncio.TimerHandle]

    @classmethod
    def converters(cls) -> dict[type, Callable[[Any], asyncio.Future[Any]]]:
        import chime

        return {chime.Bell: _bell_to_future}

    def attach(self) -> None:
        import chime

        self.handles = set()
        self.previous, chime.scheduler = chime.scheduler, _HubScheduler(self)

    def detach(self) -> None:
        import chime

        for handle in self.handles:
            handle.cancel()
        chime.scheduler = self.previous

    def leak_finders(self) -> Sequence[bridges.LeakFinder]:
        return (bridges.LeakFinder("chime timer", self._pending),)

    def _pending(self) -> list[Any]:
        return [handle for handle in self.handles if not handle.cancelled()]

    @classmethod
    def test_flavor(cls, func: Any) -> Optional[str]:
        return "chime test" if getattr(func, "__chime_test__", False) else None
