"""The private epoll sets that green frameworks and asyncore watch their fds with.

gevent's loop, eventlet's hub and asyncore's batches each keep their fds in
an epoll set of their own, whose fd is the one reader the asyncio loop
watches.  Their interest changes all go through :func:`set_interest`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["set_interest"]


def set_interest(epoll: Any, fd: int, mask: int, registered: bool) -> None:
    """Watch ``fd`` for ``mask`` in ``epoll``; ``registered``: whether we registered it before.

    Either belief may be stale: a file closed behind its framework's back
    (its number then reused) was dropped by epoll, and an fd registered by
    an entry that was dropped unseen is still there.  Both are taken in stride.
    """
    if registered:
        try:
            epoll.modify(fd, mask)
            return
        except FileNotFoundError:
            pass  # closed and its number reused: epoll forgot the old file
    try:
        epoll.register(fd, mask)
    except FileExistsError:
        epoll.modify(fd, mask)
