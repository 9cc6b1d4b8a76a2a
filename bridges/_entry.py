"""What the frameworks' ``install()`` functions share: a hub started by a legacy entry point.

``bridges.twisted.install()``, ``bridges.tornado.install()`` and
``bridges.asyncore.install()`` make a framework's own way of running a program
(``reactor.run()``, ``IOLoop.current().start()``, ``asyncore.loop()``) start a
hub.  The hub's main is then only waiting: the framework's code runs from the
callbacks it registered before, until a stop request ends the wait.
"""

from __future__ import annotations

import asyncio

from ._adapter import FrameworksArg

__all__ = ["serve_until_stopped", "with_framework"]


def with_framework(frameworks: FrameworksArg, name: str) -> FrameworksArg:
    """``frameworks`` (as ``bridges.run`` takes it) with ``name`` among them."""
    if frameworks is None:
        return [name]
    if isinstance(frameworks, str):
        return frameworks if frameworks in ("auto", name) else [frameworks, name]
    names = list(frameworks)
    return names if name in names else [*names, name]


async def serve_until_stopped() -> None:
    """A hub's main that only waits: ``hub.request_stop()`` (a signal, a stop call) ends it."""
    await asyncio.get_running_loop().create_future()
