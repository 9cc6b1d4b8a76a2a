"""tulip-bridges: one asyncio loop for Twisted, Tornado, gevent and asyncore.

The public API is what this module exports; everything else is private.
Framework-specific helpers live in ``bridges.twisted``, ``bridges.tornado``,
``bridges.gevent`` and ``bridges.asyncore``.
"""

from ._adapter import Adapter, CompetingPlugin, LeakFinder
from ._convert import awaitable, register
from ._errors import (
    BridgeError,
    FdConflictError,
    FrameworkNotInstalledError,
    HubNotRunningError,
    HubOwnsLoopError,
    HubStateError,
    LoopFactoryError,
    NotAttachedError,
    NotAwaitableError,
    SignalConflictError,
    SlowCallbackError,
    StopTimeoutError,
    UnknownFrameworkError,
    UsageError,
)
from ._hub import Hub, current_hub
from ._run import run

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "BridgeError",
    "CompetingPlugin",
    "FdConflictError",
    "FrameworkNotInstalledError",
    "Hub",
    "HubNotRunningError",
    "HubOwnsLoopError",
    "HubStateError",
    "LeakFinder",
    "LoopFactoryError",
    "NotAttachedError",
    "NotAwaitableError",
    "SignalConflictError",
    "SlowCallbackError",
    "StopTimeoutError",
    "UnknownFrameworkError",
    "UsageError",
    "awaitable",
    "current_hub",
    "register",
    "run",
]
