"""chime: a toy callback framework, the "legacy framework" of the example adapter.

A :class:`Bell` rings once with a value and calls its listeners.  ``after()``
rings one later, through the process-global ``scheduler`` that whoever runs
chime installs (here, the bridges adapter, while a hub runs).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol


class Scheduler(Protocol):
    def call_later(self, delay: float, func: Callable[[], None]) -> Any: ...


scheduler: Optional[Scheduler] = None
"""Who runs chime's timers; None when nothing does."""


class NotRunningError(RuntimeError):
    """chime was used while nothing runs it."""


class Bell:
    def __init__(self) -> None:
        self.rung = False
        self.value: Any = None
        self._listeners: list[Callable[[Any], None]] = []

    def ring(self, value: Any) -> None:
        if self.rung:
            raise RuntimeError("a Bell rings once")
        self.rung, self.value = True, value
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener(value)

    def on_ring(self, listener: Callable[[Any], None]) -> None:
        if self.rung:
            listener(self.value)
        else:
            self._listeners.append(listener)

    def __repr__(self) -> str:
        return f"<Bell {'rung' if self.rung else 'silent'}>"


def after(delay: float, value: Any) -> Bell:
    """A bell that rings with ``value`` in ``delay`` seconds."""
    if scheduler is None:
        raise NotRunningError("nothing runs chime: install a scheduler first")
    bell = Bell()
    scheduler.call_later(delay, lambda: bell.ring(value))
    return bell


def test(func: Callable[..., Bell]) -> Callable[..., Bell]:
    """Mark a test function that returns a Bell to wait for (chime's own test flavor)."""
    func.__chime_test__ = True  # type: ignore[attr-defined]
    return func
