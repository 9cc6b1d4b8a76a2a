"""What each attached framework still holds alive, found by its adapter's leak finders.

Leaks are what is alive at the end of a test and was not alive right after
its hub started, so the adapters' own machinery (Twisted's waker, the gevent
hub greenlet) never counts.  Only the adapters attached to the hub are asked.
"""

from __future__ import annotations

from typing import Any

from .._adapter import LeakFinder
from .._hub import Hub

__all__ = ["HINT_TASK", "NativeObjects", "describe_native"]

HINT_TASK = "Run with PYTHONASYNCIODEBUG=1 to see where each task was created."
"""How to learn more about a leaked task."""


class NativeObjects:
    """The framework objects of one test's hub: a snapshot at start, the leaks at the end.

    Made on the hub's loop right after the hub started; :meth:`close` when the
    test ends.
    """

    def __init__(self, hub: Hub) -> None:
        self._finders: list[LeakFinder] = [
            finder for adapter in hub.adapters for finder in adapter.leak_finders()
        ]
        self._baseline = [set(finder.find()) for finder in self._finders]

    def leaks(self) -> list[str]:
        """One line per object alive now that was not at the snapshot."""
        found = []
        for finder, before in zip(self._finders, self._baseline):
            found.extend(
                f"{finder.kind} {describe_native(obj)}"
                for obj in finder.find()
                if obj not in before
            )
        return found

    def hints(self) -> dict[str, str]:
        """How to learn more, by kind of leak."""
        hints = {"task": HINT_TASK}
        hints.update({finder.kind: finder.hint for finder in self._finders if finder.hint})
        return hints

    def close(self) -> None:
        finders, self._finders = self._finders, []
        for finder in finders:
            if finder.close is not None:
                finder.close()


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
