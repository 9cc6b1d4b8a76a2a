"""The stages of the hub's stop sequence, each bounded so that shutdown never hangs.

Adapters whose framework runs user code while it stops (Twisted's shutdown
triggers) detach first, while the tasks legacy code spawned still run; then
those tasks are cancelled; then the other adapters detach, in reverse attach
order.  A stage that overruns its bounded wait is reported with where it was
waiting, and the hub moves on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, NamedTuple

from ._errors import StopTimeoutError
from ._introspect import describe_waiter

if TYPE_CHECKING:
    from ._adapter import Adapter

__all__ = ["Stage", "StopStages"]


class Stage(NamedTuple):
    name: str
    begin: Callable[[], Awaitable[Any] | None]
    describe: Callable[[asyncio.Future[Any]], str]


class StopStages:
    """The stages of the stop sequence (a mixin of Hub)."""

    stop_timeout: float
    _attached: list[Adapter]

    def _stop_stages(self) -> Iterator[Stage]:
        attached = list(reversed(self._attached))
        for adapter in attached:
            if adapter.runs_shutdown_work:
                yield Stage(adapter.name, adapter.detach, describe_waiter)
        yield Stage("legacy tasks", self._cancel_legacy_tasks, self._describe_legacy_tasks)
        for adapter in attached:
            if not adapter.runs_shutdown_work:
                yield Stage(adapter.name, adapter.detach, describe_waiter)

    async def _bounded(self, stage: Stage, outcome: Awaitable[Any]) -> None:
        waiter = asyncio.ensure_future(outcome)
        done, _ = await asyncio.wait({waiter}, timeout=self.stop_timeout)
        if done:
            waiter.result()
            return
        waiting_for = stage.describe(waiter)
        waiter.cancel()
        self.report(
            StopTimeoutError(
                f"bridges: stop stage {stage.name!r} did not finish within "
                f"{self.stop_timeout:g}s; it was still waiting for {waiting_for}. The hub "
                "went on so that shutdown does not hang. Make that work finish (or respect "
                "cancellation) sooner, or raise Hub(stop_timeout=...)."
            ),
            f"bridges: stop stage {stage.name!r} timed out",
        )
        await asyncio.wait({waiter}, timeout=min(self.stop_timeout, 1.0))

    def _cancel_legacy_tasks(self) -> Awaitable[None] | None:
        pending = self.pending_tasks()
        for task in pending:
            task.cancel()
        return self._report_cancel_failures(pending) if pending else None

    async def _report_cancel_failures(self, tasks: list[asyncio.Task[Any]]) -> None:
        # asyncio.wait, unlike gather, leaves the tasks alone if this stage is
        # itself cancelled after its bounded wait.
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                self.report(
                    task.exception(), f"bridges: {task!r} raised while it was cancelled at stop"
                )

    def _describe_legacy_tasks(self, _: asyncio.Future[Any]) -> str:
        return ", ".join(describe_waiter(task) for task in self.pending_tasks())
