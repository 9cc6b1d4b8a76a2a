"""A greenlet blocked on an asyncio future: the part that ``bg.wait`` and ``be.wait`` share.

The greenlet blocks on its framework's hub; the future's done callback, run
on the asyncio side, resumes it.  Each framework says how (``resume``): both
switch straight into the greenlet when they can, without a pass of their hub.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

_new_object = object.__new__


class _Wake:
    """The future's done callback: resumes the waiting greenlet, unless its wait is over.

    A wait also ends when something is thrown into the greenlet (a timeout,
    a kill) after the future is done but before the loop has run this
    callback; ``switch`` is None by then, so that the callback does not
    switch into the greenlet wherever it blocks next.
    """

    __slots__ = ("resume", "switch")

    switch: Callable[..., Any] | None
    resume: Callable[..., Any]

    def __call__(self, _future: asyncio.Future[Any]) -> None:
        switch = self.switch
        if switch is not None:
            self.resume(switch)


def wait_for_future(
    future: asyncio.Future[Any],
    switch: Callable[..., Any],
    resume: Callable[[Callable[..., Any]], None],
    block: Callable[[], Any],
) -> Any:
    """Block the current greenlet until ``future`` is done; return its result or raise.

    ``block()`` is the framework's blocking switch to its hub; ``switch`` is
    the current greenlet's ``switch``, which ``resume(switch)`` calls (or has
    the hub call) on the asyncio side when the future is done.  What
    ``block()`` raises instead (a timeout, a kill) cancels the future.
    """
    wake = _new_object(_Wake)  # without an __init__ frame: once per wait
    wake.switch = switch
    wake.resume = resume
    future.add_done_callback(wake)
    try:
        block()
    except BaseException:
        future.remove_done_callback(wake)
        future.cancel()
        raise
    finally:
        wake.switch = None
    return future.result()
