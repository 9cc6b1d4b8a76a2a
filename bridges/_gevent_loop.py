"""Deprecated: the gevent loop moved to :mod:`bridges.gevent` (``bridges.gevent.AsyncioLoop``).

``GEVENT_LOOP=bridges._gevent_loop.AsyncioLoop`` keeps working for one release.
"""

from __future__ import annotations

import warnings

from .gevent._executor import RealThreadExecutor
from .gevent._loop import READ, WRITE, AsyncioLoop, ForkNotSupportedError, loop

__all__ = ["READ", "WRITE", "AsyncioLoop", "ForkNotSupportedError", "RealThreadExecutor", "loop"]

warnings.warn(
    "bridges._gevent_loop is deprecated; name bridges.gevent.AsyncioLoop instead "
    "(e.g. GEVENT_LOOP=bridges.gevent.AsyncioLoop).",
    DeprecationWarning,
    stacklevel=2,
)
