"""What reached the loop's exception handler — the hub's error sink — during one run."""

from __future__ import annotations

import asyncio
from typing import Any


class Reports:
    """Install on the running loop, then read what was reported."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []
        self._arrived: asyncio.Event | None = None

    def install(self) -> None:
        self._arrived = asyncio.Event()
        asyncio.get_running_loop().set_exception_handler(self._handle)

    def _handle(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)
        if self._arrived is not None:
            self._arrived.set()

    async def first(self, timeout: float = 10) -> None:
        """Wait (bounded) until something has been reported."""
        assert self._arrived is not None, "install() first"
        await asyncio.wait_for(self._arrived.wait(), timeout)

    @property
    def exceptions(self) -> list[BaseException | None]:
        return [context.get("exception") for context in self.contexts]

    @property
    def messages(self) -> list[str]:
        return [str(context.get("message")) for context in self.contexts]

    def describe(self) -> str:
        return "; ".join(
            f"{context.get('message')!s} ({context.get('exception')!r})"
            for context in self.contexts
        )
