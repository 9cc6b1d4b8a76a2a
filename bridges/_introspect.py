"""Where a suspended task really waits, for messages that must say so."""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import Any

__all__ = ["await_chain", "frame_place"]


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
