"""Where a suspended task really waits, for messages that must say so."""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import Any

__all__ = ["await_chain", "describe_task", "describe_waiter", "frame_place"]


def frame_place(frame: FrameType) -> str:
    return f"{frame.f_code.co_name} at {frame.f_code.co_filename}:{frame.f_lineno}"


def await_chain(task: asyncio.Task[Any], *, skip_file: str | None = None) -> list[str]:
    """``function at file:line`` for each coroutine down the chain of awaits of ``task``.

    ``Task.get_stack()`` stops at the task's own coroutine; the code that is
    really waiting sits at the end of the chain of awaits below it.
    """
    places = []
    link: Any = task.get_coro()
    while link is not None:
        frame = getattr(link, "cr_frame", None) or getattr(link, "gi_frame", None)
        if frame is not None and frame.f_code.co_filename != skip_file:
            places.append(frame_place(frame))
        link = getattr(link, "cr_await", None) or getattr(link, "gi_yieldfrom", None)
    return places


def describe_waiter(waiter: asyncio.Future[Any]) -> str:
    """A future, or a task and where it is suspended, for messages that must say what waits."""
    if not isinstance(waiter, asyncio.Task):
        return repr(waiter)
    places = _places(waiter, None)
    where = f", suspended in {' -> '.join(places)}" if places else ""
    return f"task {waiter.get_name()!r} ({waiter.get_coro()!r}){where}"


def describe_task(task: asyncio.Task[Any], *, skip_file: str | None = None) -> str:
    """Where a pending task is suspended: ``function at file:line`` down the chain of awaits.

    ``Task.get_stack()`` stops at the task's own coroutine; the code that is
    really waiting is at the end of the chain of awaits below it, or, for a
    task waiting on a framework's own thread of control (a greenlet), where
    the attached adapter says it waits.  ``skip_file``: frames of that file
    (the caller's own machinery) are left out.
    """
    return " -> ".join(_places(task, skip_file)) or repr(task.get_coro())


def _places(task: asyncio.Task[Any], skip_file: str | None) -> list[str]:
    from . import _adapter

    for cls in _adapter.loaded():
        places = cls.waiting_in(task)
        if places:
            return places
    return await_chain(task, skip_file=skip_file)
