"""Every private detail of gevent (and of asyncio, for gevent's sake) the adapter relies on.

Nothing here imports gevent at import time: the loop imports this module
while gevent itself is being imported (``GEVENT_LOOP``, standalone mode).

Each function touches one detail, says which versions it was checked on, and
has a test of the *behaviour* relied on in tests/test_gevent_compat.py.  A
detail that has gone fails loudly (an error or a warning that says what is
lost), never by silently switching a feature off.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal as _signal_module
import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .._unpatched import clear_default_executor, replace_selector

if TYPE_CHECKING:
    import gevent.hub

__all__ = [
    "MISSING",
    "call_soon_threadsafe_keeping_gil",
    "clear_default_executor",
    "core_events_sentinel",
    "executor_future_class",
    "existing_threadpool",
    "hub_if_exists_getter",
    "loop_selector",
    "new_standalone_loop",
    "original_attr",
    "renew_after_fork",
    "replace_selector",
]

MISSING = object()


def existing_threadpool(ghub: gevent.hub.Hub) -> Any:
    """The thread pool ``ghub`` made, or None if it made none.

    ``Hub.threadpool`` creates a pool on first use; the stop sequence only
    wants an existing one.  Checked on gevent 23.9-25.9: ``Hub._threadpool``
    holds it (None until used).  If a gevent release drops the attribute,
    the pool's threads could outlive the hub unnoticed, so this warns.
    """
    pool = getattr(ghub, "_threadpool", MISSING)
    if pool is MISSING:
        import gevent

        warnings.warn(
            f"bridges: gevent {gevent.__version__} has no Hub._threadpool, so the hub cannot "
            "tell whether gevent's thread pool was used and cannot kill it at stop; its "
            "threads may outlive the hub. Kill it yourself (gevent.get_hub().threadpool.kill()) "
            "and report this gevent version to tulip-bridges.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return pool


def hub_if_exists_getter() -> Any:
    """gevent's getter of this thread's hub that never creates one (``gevent._hub_local``).

    Compiled: the hot path that awaits gevent objects asks it on every await
    (``bridges.gevent._api._run_pending``).  Private; checked on gevent
    23.9-26.9.
    """
    from gevent._hub_local import get_hub_if_exists

    return get_hub_if_exists


def original_attr(module: str, name: str) -> Any:
    """The unpatched ``module.name``: asyncio's machinery must not run on gevent's."""
    try:
        from gevent.monkey import get_original
    except ImportError:  # pragma: no cover - gevent is always importable here
        return getattr(__import__(module), name)
    return get_original(module, name)


def executor_future_class() -> type | None:
    """The class of the futures ``gevent.threadpool.ThreadPoolExecutor.submit()`` returns.

    A private class (``gevent.threadpool._FutureProxy``) whose ``asyncresult``
    is the pool's ``AsyncResult``; checked on gevent 23.9-26.9.  Without it,
    such futures are not awaitable through ``bridges.awaitable`` (a test fails).
    """
    import gevent.threadpool

    cls = getattr(gevent.threadpool, "_FutureProxy", None)
    return cls if isinstance(cls, type) else None


def core_events_sentinel() -> Any:
    from gevent._ffi.loop import GEVENT_CORE_EVENTS

    return GEVENT_CORE_EVENTS


def new_standalone_loop(selector_class: type) -> asyncio.AbstractEventLoop:
    """A fresh asyncio loop on an *original* selector and self-pipe, for the standalone mode.

    ``selector_class`` is an unpatched ``selectors`` class (the backend).
    After ``monkey.patch_all()`` asyncio would build its self-pipe from
    gevent sockets, which need a gevent hub - the one being created right
    now.  ``socket.socketpair`` is swapped for the original while the loop is
    built (the constructor is the only place asyncio calls it).
    """
    with _plain_socketpair_installed():
        return asyncio.SelectorEventLoop(selector_class())


def call_soon_threadsafe_keeping_gil(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """``loop.call_soon_threadsafe`` whose wake-up of the loop does not release the GIL.

    gevent's threads wake a hub with an async watcher's ``send()``; libev's
    (and uvloop's ``call_soon_threadsafe``) writes its wake-up byte while
    holding the GIL, so the sending thread runs on until it blocks before the
    hub's thread takes over.  asyncio's selector loops write it with
    ``socket.send``, which releases the GIL: the woken hub then runs first,
    in the middle of the sender's work.  gevent's thread pool counts on the
    former - a worker sets the result, then marks the task done; a hub that
    runs in between sees the task unfinished and starts another worker
    thread for the next one (tests/test_gevent_threads.py).

    For a selector loop this queues the callback as ``call_soon_threadsafe``
    does (CPython 3.9-3.13's ``_call_soon``; the self-pipe's write end in
    ``_csock``, None or closed once the loop closes) and writes the byte with
    libc's ``write`` through ``ctypes.PyDLL``, whose calls keep the GIL (the
    socket is non-blocking, so the write never waits).  Other loops, or a
    platform without that ``write``, get ``call_soon_threadsafe`` itself.
    The caller checks that the loop is not closed.
    """
    found = _gil_holding_write()
    if found is None or not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return loop.call_soon_threadsafe
    write, one = found
    call_soon = loop._call_soon  # type: ignore[attr-defined]

    def call(callback: Callable[..., Any], *args: Any) -> None:
        call_soon(callback, args, None)
        csock = loop._csock  # type: ignore[attr-defined]
        if csock is not None:
            fd = csock.fileno()
            if fd >= 0:
                write(fd, b"\0", one)

    return call


@functools.cache
def _gil_holding_write() -> tuple[Any, Any] | None:
    """libc's ``write`` called with the GIL held, and its ``size_t`` 1; None where there is none.

    No ``argtypes``: checking them doubles the call's cost (about 1 µs
    here); the fd converts to a C int by default and the size is given as a
    ``size_t`` already.
    """
    try:
        import ctypes

        write = ctypes.PyDLL(None)["write"]
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    write.restype = ctypes.c_ssize_t
    return write, ctypes.c_size_t(1)


def loop_selector(loop: asyncio.AbstractEventLoop) -> Any:
    """The selector ``loop`` waits on, or None for a loop that is not selector-based.

    CPython 3.9-3.13's ``BaseSelectorEventLoop`` keeps it in ``_selector``
    (tests/test_gevent_backends.py fails if it moves); uvloop has none.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return None
    return getattr(loop, "_selector", None)


@contextlib.contextmanager
def _swapped(module: Any, name: str, value: Any) -> Iterator[None]:
    """``module.name`` is ``value`` inside the block (asyncio looks these up at call time)."""
    patched = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, patched)


@contextlib.contextmanager
def real_signal_calls() -> Iterator[None]:
    """asyncio's ``signal.signal()``/``set_wakeup_fd()`` calls reach the OS, not gevent.

    After ``patch_all`` gevent's ``signal.signal()`` keeps a SIGCHLD handler
    to itself instead of installing it, and would take asyncio's ``SIG_DFL``
    at removal for the application resetting its own handler; gevent's
    ``set_wakeup_fd()`` would take asyncio's self-pipe for the application's
    wake-up fd, to which gevent reports SIGCHLD.
    """
    with (
        _swapped(_signal_module, "signal", original_attr("signal", "signal")),
        _swapped(_signal_module, "set_wakeup_fd", original_attr("signal", "set_wakeup_fd")),
    ):
        yield


def _plain_socketpair_installed() -> contextlib.AbstractContextManager[None]:
    """``socket.socketpair`` is an unpatched one while asyncio makes its self-pipe."""
    import socket as socket_module

    return _swapped(socket_module, "socketpair", _plain_socketpair)


def renew_after_fork(loop: asyncio.AbstractEventLoop) -> bool:
    """In a forked child: a new selector and self-pipe for ``loop``; False if it cannot.

    CPython 3.9-3.13's ``BaseSelectorEventLoop`` makes its self-pipe in
    ``_make_self_pipe``, drops it in ``_close_self_pipe`` and keeps its write
    end in ``_csock``, which is also the signal wake-up fd while signal
    handlers are installed; ``asyncio.events._set_running_loop`` records the
    running loop with the pid (tests/test_gevent.py fails if these change).
    uvloop keeps all of this in C.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return False
    replace_selector(loop, type(loop._selector)())  # type: ignore[attr-defined]
    loop._close_self_pipe()  # type: ignore[attr-defined]
    with _plain_socketpair_installed():
        loop._make_self_pipe()  # type: ignore[attr-defined]
    if getattr(loop, "_signal_handlers", None):
        with contextlib.suppress(ValueError), real_signal_calls():  # ValueError: not main thread
            _signal_module.set_wakeup_fd(loop._csock.fileno())  # type: ignore[attr-defined]
    if loop.is_running():
        # asyncio hides a running loop from a forked child (it records the
        # pid); this child goes on running it.
        asyncio.events._set_running_loop(loop)
    return True


def _plain_socketpair(*args: Any) -> tuple[Any, Any]:
    """``socket.socketpair`` built from the original socket class, whatever is patched."""
    import _socket

    socket_class = original_attr("socket", "socket")
    left, right = _socket.socketpair(*args)
    return (
        socket_class(left.family, left.type, left.proto, left.detach()),
        socket_class(right.family, right.type, right.proto, right.detach()),
    )
