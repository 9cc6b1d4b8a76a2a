"""The hub's registries of fd and signal owners.

asyncio keeps one reader and one writer per file descriptor and one handler
per signal, and silently replaces an earlier one.  Adapters register through
the hub, which refuses a second owner with an error that names both.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ._errors import BridgeError, FdConflictError, SignalConflictError

__all__ = ["Registrations"]


class Registrations:
    """``add_reader``/``add_writer``/``add_signal_handler`` with owners (a mixin of Hub)."""

    loop: asyncio.AbstractEventLoop
    _readers: dict[int, str]
    _writers: dict[int, str]
    _signals: dict[int, str]

    def _init_registrations(self) -> None:
        self._readers = {}
        self._writers = {}
        self._signals = {}

    def fd_owners(self) -> dict[str, dict[int, str]]:
        """A snapshot of who owns which fd: ``{"readers": {fd: owner}, "writers": {...}}``."""
        return {"readers": dict(self._readers), "writers": dict(self._writers)}

    # -- file descriptors ---------------------------------------------------

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None:
        """``loop.add_reader`` that refuses to replace another owner's reader."""
        fileno = _fileno(fd)
        _claim(self._readers, fileno, owner, "reader", FdConflictError)
        _register_or_unclaim(self._readers, fileno, self.loop.add_reader, callback, args)

    def remove_reader(self, fd: Any, *, owner: str) -> bool:
        fileno = _fileno(fd)
        if not _release(self._readers, fileno, owner, "reader", FdConflictError):
            return False
        return self.loop.remove_reader(fileno)

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any, owner: str) -> None:
        """``loop.add_writer`` that refuses to replace another owner's writer."""
        fileno = _fileno(fd)
        _claim(self._writers, fileno, owner, "writer", FdConflictError)
        _register_or_unclaim(self._writers, fileno, self.loop.add_writer, callback, args)

    def remove_writer(self, fd: Any, *, owner: str) -> bool:
        fileno = _fileno(fd)
        if not _release(self._writers, fileno, owner, "writer", FdConflictError):
            return False
        return self.loop.remove_writer(fileno)

    def claim(self, fd: Any, *, owner: str, reader: bool, writer: bool) -> None:
        """Own ``fd``'s reader and/or writer without registering it with the loop.

        For an owner that watches its fds by its own means (asyncore's
        dispatchers sit in one epoll set, which is the loop's reader): the
        registry still refuses a second owner, and :meth:`fd_owners` still
        tells who owns what.  Claims nothing when refused.
        """
        fileno = _fileno(fd)
        had_reader = fileno in self._readers
        if reader:
            _claim(self._readers, fileno, owner, "reader", FdConflictError)
        if writer:
            try:
                _claim(self._writers, fileno, owner, "writer", FdConflictError)
            except BaseException:
                if reader and not had_reader:
                    del self._readers[fileno]
                raise

    def unclaim(self, fd: Any, *, owner: str, reader: bool, writer: bool) -> None:
        """Give up what :meth:`claim` took (the loop was never told of it)."""
        fileno = _fileno(fd)
        if reader:
            _release(self._readers, fileno, owner, "reader", FdConflictError)
        if writer:
            _release(self._writers, fileno, owner, "writer", FdConflictError)

    # -- signals ------------------------------------------------------------

    def add_signal_handler(
        self, signum: int, callback: Callable[..., Any], *args: Any, owner: str
    ) -> None:
        """``loop.add_signal_handler`` that refuses to replace another owner's handler."""
        _claim(self._signals, int(signum), owner, "handler", SignalConflictError)
        _register_or_unclaim(
            self._signals, int(signum), self.loop.add_signal_handler, callback, args
        )

    def remove_signal_handler(self, signum: int, *, owner: str) -> bool:
        if not _release(self._signals, int(signum), owner, "handler", SignalConflictError):
            return False
        return self.loop.remove_signal_handler(signum)

    def _release_registrations(self) -> None:
        loop = self.loop
        if loop.is_closed():
            return
        for fd in list(self._readers):
            loop.remove_reader(fd)
        for fd in list(self._writers):
            loop.remove_writer(fd)
        for signum in list(self._signals):
            loop.remove_signal_handler(signum)
        self._readers.clear()
        self._writers.clear()
        self._signals.clear()


def _fileno(fd: Any) -> int:
    return fd if isinstance(fd, int) else int(fd.fileno())


def _claim(
    table: dict[int, str], key: int, owner: str, role: str, error: type[BridgeError]
) -> None:
    current = table.get(key)
    if current is not None and current != owner:
        what = _KIND[error]
        raise error(
            f"{what} {key} already has a {role} owned by {current!r}, and {owner!r} tried "
            f"to register another. asyncio keeps one {role} per {what}, so the second "
            f"would silently replace the first and {current!r} would wait forever. Let one "
            f"framework own {what} {key} (close or unregister {current!r}'s object first), "
            "and pass results between the frameworks with bridges.awaitable()."
        )
    table[key] = owner


def _register_or_unclaim(
    table: dict[int, str],
    key: int,
    register: Callable[..., Any],
    callback: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    # A claim must not outlive a registration the loop refused (epoll refuses
    # regular files; signals can only be set from the main thread).
    try:
        register(key, callback, *args)
    except BaseException:
        del table[key]
        raise


def _release(
    table: dict[int, str], key: int, owner: str, role: str, error: type[BridgeError]
) -> bool:
    current = table.get(key)
    if current is None:
        return False
    if current != owner:
        raise error(
            f"{owner!r} tried to remove the {role} of {_KIND[error]} {key}, which belongs "
            f"to {current!r}. Each owner removes only what it registered."
        )
    del table[key]
    return True


_KIND: dict[type[BridgeError], str] = {FdConflictError: "fd", SignalConflictError: "signal"}
