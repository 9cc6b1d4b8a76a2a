"""What each attached framework still holds alive, found through its public API.

Leaks are what is alive at the end of a test and was not alive right after
its hub started, so the adapters' own machinery (Twisted's waker, the gevent
hub greenlet) never counts.  Only frameworks attached to the hub are asked,
and only modules they already imported are touched.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable, Optional

from .._hub import Hub

__all__ = ["HINTS", "NativeObjects", "describe_native"]

HINTS = {
    "task": "Run with PYTHONASYNCIODEBUG=1 to see where each task was created.",
    "Twisted delayed call": "Set twisted.internet.base.DelayedCall.debug = True to see where "
    "each delayed call was made.",
}
"""How to learn more about a kind of leak, for the kinds whose description can say more."""


class NativeObjects:
    """The framework objects of one test's hub: a snapshot at start, the leaks at the end.

    Made on the hub's loop right after the hub started; :meth:`close` when the
    test ends.
    """

    def __init__(self, hub: Hub) -> None:
        self._finders: dict[str, Callable[[], list[Any]]] = {}
        self._watch: Optional[_GreenletWatch] = None
        if "twisted" in hub.frameworks:
            self._finders["Twisted delayed call"] = _twisted_delayed_calls
        if "asyncore" in hub.frameworks:
            self._finders["asyncore dispatcher"] = _asyncore_dispatchers
        if "gevent" in hub.frameworks:
            self._watch = _GreenletWatch()
            self._finders["greenlet"] = self._watch.live
        self._baseline = {kind: set(find()) for kind, find in self._finders.items()}

    def leaks(self) -> list[str]:
        """One line per object alive now that was not at the snapshot."""
        found = []
        for kind, find in self._finders.items():
            before = self._baseline[kind]
            found.extend(f"{kind} {describe_native(obj)}" for obj in find() if obj not in before)
        return found

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def describe_native(obj: Any) -> str:
    """A one-line description that says where the object was made when the framework knows."""
    text = " ".join(repr(obj).split())
    # gevent records where each Greenlet was spawned (config.track_greenlet_tree,
    # on by default): name the first frame that is not gevent's or ours.
    frame = getattr(obj, "spawning_stack", None)
    while frame is not None:
        filename = frame.f_code.co_filename
        if "gevent" not in filename and "bridges" not in filename:
            return f"{text}, spawned at {filename}:{frame.f_lineno}"
        frame = frame.f_back
    return text


def _twisted_delayed_calls() -> list[Any]:
    # DelayedCall's repr names the function, and where it was created when
    # twisted.internet.base.DelayedCall.debug is True.
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return []
    return [call for call in reactor.getDelayedCalls() if call.active()]


def _asyncore_dispatchers() -> list[Any]:
    module = sys.modules.get("bridges.asyncore")
    if module is None:
        return []
    return list(module.dispatchers())


class _GreenletWatch:
    """Remembers every greenlet that runs while a test does, through ``greenlet.settrace``.

    gevent keeps no registry of its greenlets, and searching the heap for
    them costs tens of milliseconds per test in a big process.  A greenlet
    starts by being switched into, so the trace function sees each one; the
    previous trace function (a coverage tool's) is called too and restored.
    """

    def __init__(self) -> None:
        import greenlet

        self._greenlet = greenlet
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self._previous = greenlet.settrace(self)

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            self._seen.add(args[1])
        if self._previous is not None:
            self._previous(event, args)

    def live(self) -> list[Any]:
        hub_kind = sys.modules["gevent.hub"].Hub  # gevent's own hub greenlet: never a leak
        current = self._greenlet.getcurrent()
        return [
            glet
            for glet in list(self._seen)
            if glet and glet is not current and not isinstance(glet, hub_kind)
        ]

    def close(self) -> None:
        self._greenlet.settrace(self._previous)
