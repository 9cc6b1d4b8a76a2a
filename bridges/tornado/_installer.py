"""``bridges.tornado.install()``: an unchanged ``IOLoop.current().start()`` runs a hub.

A Tornado program of the classic shape builds its application, calls
``app.listen(port)`` (which registers the listening sockets with
``IOLoop.current()``) and ends in ``IOLoop.current().start()``.  ``install()``
creates the asyncio loop the hub will run on, makes it this thread's current
loop and binds an IOLoop to it, so that everything before ``start()`` lands on
that loop; ``start()`` then runs :func:`bridges.run` on it with Tornado
attached (the hub adopts the IOLoop) until ``IOLoop.current().stop()``,
SIGTERM or Ctrl-C.

When ``start()`` returns, what ``install()`` set up is gone: the loop is
closed and no longer current, and the IOLoop is unbound from it (a later
``IOLoop.current()`` makes a new one, as after ``IOLoop.close()``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado.ioloop import IOLoop

from .._adapter import FrameworksArg
from .._entry import serve_until_stopped, with_framework
from .._errors import HubOwnsLoopError
from .._hub import DEFAULT_STOP_TIMEOUT, current_hub
from .._run import LoopFactoryArg, make_loop_factory
from .._run import run as run_hub
from . import _HubIOLoop
from ._compat import unbind_ioloop

__all__ = ["install"]


class _StartableIOLoop(_HubIOLoop):
    """The hub's IOLoop whose ``start()`` starts the hub (once), for code that owns its main."""

    _bridges_settings: dict[str, Any]
    _bridges_starting = False

    def start(self) -> None:
        """Run a hub on this IOLoop's asyncio loop until ``stop()``, SIGTERM or Ctrl-C.

        Ctrl-C raises ``KeyboardInterrupt`` after the stop sequence, as it does
        from Tornado's own ``start()``.
        """
        if self._bridges_hub is not None:
            super().start()  # refused: the hub already runs this IOLoop
        loop = self.asyncio_loop  # type: ignore[attr-defined]
        if loop.is_closed():
            raise _closed_error()
        self._bridges_starting = True
        try:
            run_hub(self._serve, loop_factory=lambda: loop, **self._bridges_settings)
        finally:
            self._bridges_starting = False
            self._bridges_hub = None
            unbind_ioloop(self)

    def stop(self) -> None:
        if self._bridges_hub is None and self._bridges_starting:
            # Scheduled before start(), it runs before the hub's first step: try again after.
            self.asyncio_loop.call_soon(self.stop)  # type: ignore[attr-defined]
            return
        super().stop()

    async def _serve(self) -> None:
        # Adopted by the hub's Tornado adapter; stop() now asks the hub to stop.
        self._bridges_hub = current_hub()
        await serve_until_stopped()


def _closed_error() -> RuntimeError:
    return HubOwnsLoopError(
        "IOLoop.start() was called again after the hub that bridges.tornado.install() "
        "prepared had stopped; its loop is closed. Call bridges.tornado.install() again "
        "before the next start()."
    )


def install(
    *,
    frameworks: FrameworksArg = "auto",
    loop_factory: LoopFactoryArg = None,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> IOLoop:
    """Make ``IOLoop.current().start()`` run a hub; returns that IOLoop.

    Call it first thing, before anything calls ``IOLoop.current()``::

        import bridges.tornado
        bridges.tornado.install()
        ...                                # the program as it was: app.listen(8888)
        IOLoop.current().start()           # a hub until IOLoop.stop(), SIGTERM or Ctrl-C

    ``start()`` is :func:`bridges.run` with these ``frameworks`` (Tornado is
    always among them), on a loop from ``loop_factory`` (``"uvloop"`` for
    uvloop), with this ``stop_timeout``.
    """
    loop = make_loop_factory(loop_factory)()
    ioloop = _StartableIOLoop(asyncio_loop=loop)
    ioloop._bridges_settings = {
        "frameworks": with_framework(frameworks, "tornado"),
        "stop_timeout": stop_timeout,
    }
    asyncio.set_event_loop(loop)
    return ioloop
