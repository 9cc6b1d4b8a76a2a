"""asyncio's own machinery, kept unpatched in a process that gevent or eventlet monkey-patched.

Both frameworks replace ``threading``, ``queue``, ``select`` and
``selectors`` with objects that block on *their* hub.  A loop made after
patching would wait on that hub (which, on the bridges hub, waits on the
loop), and its executor would run greenlets instead of threads.  The
adapters give the loop the originals back, through the patching
framework's own accessor of them.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["Original", "RealThreadExecutor", "clear_default_executor", "replace_selector"]

Original = Callable[[str, str], Any]
"""``original(module, name)``: the unpatched ``module.name``."""


class RealThreadExecutor(ThreadPoolExecutor):
    """asyncio's default executor on real OS threads, even after monkey-patching.

    The stdlib ``ThreadPoolExecutor`` builds its workers, queue and locks from
    ``threading`` and ``queue``, which gevent's ``patch_all()`` and eventlet's
    ``monkey_patch()`` turn into greenlets: ``asyncio.to_thread`` would stop
    running anything in parallel.  This one uses the original ``_thread``
    primitives, as ``original(module, name)`` (the patching framework's
    accessor of the unpatched objects) gives them.  (``ThreadPoolExecutor`` is
    its base only because ``loop.set_default_executor`` requires one; its
    constructor is deliberately not called.)
    """

    def __init__(self, original: Original, max_workers: int | None = None) -> None:
        self._max = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._work_items = original("queue", "SimpleQueue")()
        self._allocate_lock = original("_thread", "allocate_lock")
        self._start_thread = original("_thread", "start_new_thread")
        self._lock = self._allocate_lock()
        self._exits: list[Any] = []
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._work_items.put((future, fn, args, kwargs))
            if self._idle == 0 and len(self._exits) < self._max:
                exit_lock = self._allocate_lock()
                exit_lock.acquire()
                self._exits.append(exit_lock)
                self._start_thread(self._work, (exit_lock,))
            elif self._idle:
                self._idle -= 1
        return future

    def _work(self, exit_lock: Any) -> None:
        try:
            while True:
                item = self._work_items.get()
                if item is None:
                    return
                future, fn, args, kwargs = item
                del item
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # noqa: BLE001 - handed to the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                del future, fn, args, kwargs
                with self._lock:
                    self._idle += 1
        finally:
            exit_lock.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            exits = list(self._exits)
        for _ in exits:
            self._work_items.put(None)
        if wait:
            for exit_lock in exits:
                exit_lock.acquire()


def clear_default_executor(loop: asyncio.AbstractEventLoop, executor: Any) -> None:
    """Leave ``loop`` without a default executor if ``executor`` is still it.

    Checked on CPython 3.9-3.13: ``BaseEventLoop._default_executor`` holds it.
    """
    if getattr(loop, "_default_executor", None) is executor:
        loop._default_executor = None  # type: ignore[attr-defined]


def replace_selector(loop: asyncio.AbstractEventLoop, selector: Any) -> None:
    """Move a selector event loop's registrations to ``selector``; close the old one.

    CPython 3.9-3.13: ``BaseSelectorEventLoop._selector`` holds the selector
    (tests/test_gevent.py fails if that changes).
    """
    old = loop._selector  # type: ignore[attr-defined]
    for key in list(old.get_map().values()):
        selector.register(key.fileobj, key.events, key.data)
    loop._selector = selector  # type: ignore[attr-defined]
    old.close()
