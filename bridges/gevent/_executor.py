"""asyncio's default executor on real OS threads, even after ``monkey.patch_all()``."""

from __future__ import annotations

from .. import _unpatched
from ._compat import original_attr

__all__ = ["RealThreadExecutor"]


class RealThreadExecutor(_unpatched.RealThreadExecutor):
    """asyncio's default executor on real OS threads, even after ``monkey.patch_all()``.

    The threads, queue and locks come from the originals gevent keeps
    (``gevent.monkey.get_original``); the executor is shared with eventlet.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(original_attr, max_workers)
