"""``bridges.asyncore.install()``: an unchanged top-level ``asyncore.loop()`` runs a hub.

An asyncore program creates its dispatchers (which register in
``asyncore.socket_map``) and then blocks in ``asyncore.loop()`` until the map
is empty.  ``install()`` replaces ``asyncore.loop`` with a function that
does the same on a hub: :func:`bridges.run` with asyncore attached, awaiting
:func:`bridges.asyncore.loop` (the map empties, or SIGTERM stops the hub,
which closes the dispatchers left).  Ctrl-C raises ``KeyboardInterrupt`` and
``ExitNow`` reaches the caller, as from asyncore's own ``loop()``.

The replacement runs one hub: when that hub stops, ``asyncore.loop`` is
asyncore's own again.  ``loop(count=N)`` -- a program that polls in its own
main loop -- is not a main the hub can take over, so it goes to asyncore's
own ``loop()`` (and the replacement stays for the program's real main).
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from .._adapter import FrameworksArg
from .._entry import with_framework
from .._run import LoopFactoryArg, make_loop_factory
from .._run import run as run_hub

__all__ = ["install_loop"]

_INSTALLED = "__bridges_entry__"
"""Attribute marking the replacement ``loop``; holds the module's own."""


def install_loop(
    module: ModuleType,
    *,
    frameworks: FrameworksArg,
    loop_factory: LoopFactoryArg,
    stop_timeout: float,
) -> None:
    """Replace ``module.loop`` with one that runs a hub, until that hub stops."""
    make_loop_factory(loop_factory)  # refuse a bad loop_factory now, not in loop()
    own = getattr(module.loop, _INSTALLED, module.loop)
    settings = {
        "frameworks": with_framework(frameworks, "asyncore"),
        "loop_factory": loop_factory,
        "stop_timeout": stop_timeout,
    }
    module.loop = _hub_loop(module, own, settings)


def _hub_loop(
    module: ModuleType, own: Callable[..., Any], settings: dict[str, Any]
) -> Callable[..., Any]:
    from . import loop as await_loop

    @functools.wraps(own)
    def loop(
        timeout: float = 30.0, use_poll: bool = False, map: Any = None, count: Any = None
    ) -> None:
        if count is not None:
            return own(timeout, use_poll, map, count)  # type: ignore[no-any-return]
        try:
            run_hub(functools.partial(await_loop, map=map), **settings)
        finally:
            if module.loop is loop:
                module.loop = own
        return None

    setattr(loop, _INSTALLED, own)
    return loop
