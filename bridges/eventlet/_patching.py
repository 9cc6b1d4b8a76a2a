"""Monkey-patched processes: eventlet's ``monkey_patch()`` and the hub's own machinery.

After ``eventlet.monkey_patch()``, ``threading`` makes greenthreads, so
asyncio's default executor would stop running anything in parallel: the
hub gives the loop an executor on real OS threads (the originals that
``eventlet.patcher.original`` keeps) for as long as eventlet is attached.

gevent and eventlet patch the same modules (``socket``, ``threading``,
``time``, ``select``...) with objects that block on *their* hub: in a
process patched by one of them, the other's green objects block on the
wrong hub.  Attaching eventlet in such a process is refused with
:class:`MixedPatchingError`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._errors import BridgeError
from .._unpatched import RealThreadExecutor, clear_default_executor, replace_selector

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = [
    "MixedPatchingError",
    "patched_by_eventlet",
    "refuse_mixed_patching",
    "release_executor",
    "use_original_selector",
    "use_real_thread_executor",
]


class MixedPatchingError(BridgeError, RuntimeError):
    """eventlet and gevent on one hub in a process that one of them monkey-patched."""


def patched_by_eventlet() -> bool:
    """Whether ``eventlet.monkey_patch()`` patched anything in this process."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None:
        return False
    return any(patcher.is_monkey_patched(name) for name in ("socket", "thread", "time", "select"))


def _patched_by_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_anything_patched())


def refuse_mixed_patching(hub: Hub) -> None:
    """Refuse eventlet beside gevent when either of them has monkey-patched the process."""
    if _patched_by_gevent():
        raise MixedPatchingError(
            "gevent.monkey.patch_all() (or another gevent patch) has patched this process, "
            "and eventlet was asked to attach: gevent's patched socket, threading and time "
            "block on gevent's hub, under eventlet's green objects, so neither framework "
            "would work. Attach one of them (frameworks=[..., 'gevent'] or [..., 'eventlet']); "
            "to run both on one hub, patch neither: use their green modules explicitly "
            "(gevent.socket, eventlet.green.socket)."
        )
    if patched_by_eventlet() and hub.adapter("gevent") is not None:
        raise MixedPatchingError(
            "eventlet.monkey_patch() has patched this process, and gevent is attached to the "
            "same hub: eventlet's patched socket, threading and time block on eventlet's hub, "
            "under gevent's own objects, so neither framework would work. Attach one of them "
            "(frameworks=[..., 'eventlet'] without 'gevent', or the reverse); to run both "
            "on one hub, patch neither and use their green modules explicitly."
        )


def _original(module: str, name: str) -> Any:
    from eventlet.patcher import original

    return getattr(original(module), name)


def use_original_selector(loop: asyncio.AbstractEventLoop) -> None:
    """Give a loop made after ``monkey_patch(select=True)`` an unpatched selector.

    The patched ``select`` module has no ``epoll``, so ``selectors`` falls back
    to ``SelectSelector`` on eventlet's green ``select()``, which blocks by
    switching to eventlet's hub: the loop would wait on eventlet, which now
    waits on the loop.
    """
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None or not patcher.is_monkey_patched("select"):
        return
    if getattr(loop, "_selector", None) is None:
        return  # uvloop: libuv polls, no Python selector
    replace_selector(loop, _unpatched_selectors(patcher.original("select")).DefaultSelector())


_selectors_copy: ModuleType | None = None


def _unpatched_selectors(select: ModuleType) -> ModuleType:
    """A private copy of ``selectors`` built on the original ``select`` module.

    ``eventlet.patcher.original("selectors")`` re-imports ``selectors`` on the
    *green* ``select`` (no epoll), and ``import_patched`` returns a cached
    green copy; so the stdlib module is executed once more here, with the
    original ``select`` in ``sys.modules`` for the length of that import.
    """
    global _selectors_copy
    if _selectors_copy is None:
        spec = importlib.util.find_spec("selectors")
        if spec is None or spec.loader is None:  # pragma: no cover - the stdlib has it
            raise ImportError("the stdlib selectors module cannot be found")
        module = importlib.util.module_from_spec(spec)
        patched = sys.modules["select"]
        sys.modules["select"] = select
        try:
            spec.loader.exec_module(module)
        finally:
            sys.modules["select"] = patched
        _selectors_copy = module
    return _selectors_copy


def use_real_thread_executor(loop: asyncio.AbstractEventLoop) -> RealThreadExecutor | None:
    """Under ``monkey_patch(thread=True)``, give ``loop`` an executor of real OS threads."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None or not patcher.is_monkey_patched("thread"):
        return None
    if not hasattr(loop, "_default_executor"):
        # uvloop keeps its executor where it cannot be cleared again at detach;
        # there asyncio's executor stays as patched.
        return None
    executor = RealThreadExecutor(_original)
    loop.set_default_executor(executor)
    return executor


def release_executor(loop: asyncio.AbstractEventLoop, executor: RealThreadExecutor) -> None:
    """Shut the executor down here (asyncio would join it from a greenthread) and unset it."""
    executor.shutdown(wait=True)
    clear_default_executor(loop, executor)
