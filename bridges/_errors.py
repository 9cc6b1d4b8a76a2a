"""The errors the hub raises.

Every one is a :class:`BridgeError`, so ``except bridges.BridgeError`` catches
anything the hub itself complains about.  Where Python already has a fitting
built-in exception (``TypeError`` for a wrong argument, ``RuntimeError`` for a
wrong state) the error subclasses that too, so code written against plain
asyncio keeps catching what it caught before.

Each message says what happened *and* what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "FdConflictError",
    "FrameworkNotInstalledError",
    "HubNotRunningError",
    "HubOwnsLoopError",
    "HubStateError",
    "LoopFactoryError",
    "NotAttachedError",
    "NotAwaitableError",
    "SignalConflictError",
    "SlowCallbackError",
    "StopTimeoutError",
    "UnknownFrameworkError",
    "UsageError",
]


class BridgeError(Exception):
    """Base class of every error the hub raises."""


class FrameworkNotInstalledError(BridgeError, ImportError):
    """A framework was asked for by name but its package is not installed."""


class UnknownFrameworkError(BridgeError, ValueError):
    """A framework name that the hub has no adapter for."""


class LoopFactoryError(BridgeError, ValueError):
    """``loop_factory`` named a loop that cannot be made here."""


class HubNotRunningError(BridgeError, RuntimeError):
    """Code that needs the hub ran where no hub is running."""


class NotAttachedError(HubNotRunningError):
    """A framework was used through bridges, but no running hub has it attached.

    Every adapter raises this one type (``Adapter.current()``): the message
    names the framework and how to attach it.
    """


class HubOwnsLoopError(BridgeError, RuntimeError):
    """Code tried to run, or block, the loop that the hub runs.

    ``reactor.run()``, ``IOLoop.start()``, asyncore's blocking ``loop()`` and
    a gevent blocking call from asyncio code all raise a subclass of this
    one: on the hub one asyncio loop runs everything, and starting or
    blocking it again would stall every framework.  The message says what to
    do instead.
    """


class HubStateError(BridgeError, RuntimeError):
    """The hub was used in a way its lifecycle does not allow (started twice, nested, ...)."""


class FdConflictError(BridgeError):
    """Two owners claimed the reader (or writer) of one file descriptor.

    asyncio keeps one reader and one writer per fd; a second ``add_reader``
    silently replaces the first callback, and the first framework then waits
    forever.  The hub refuses instead.
    """


class SignalConflictError(BridgeError):
    """Two owners claimed the handler of one signal."""


class UsageError(BridgeError, TypeError):
    """A bridges function was called with arguments it cannot use.

    The message says how to call it instead.
    """


class NotAwaitableError(BridgeError, TypeError):
    """:func:`bridges.awaitable` was given something it cannot convert."""


class StopTimeoutError(BridgeError):
    """A stage of the stop sequence did not finish within its bounded wait.

    It is *reported* through the loop's exception handler, not raised: the hub
    moves on to the next stage so that shutdown never hangs.
    """


class SlowCallbackError(BridgeError):
    """One dispatch held the hub's loop longer than ``slow_callback`` seconds.

    *Reported*, not raised: the watchdog thread logs it at once, while the
    dispatch still blocks, and sends it through the hub's error sink (the
    loop's exception handler), where it arrives when the loop runs again.
    The pytest plugin turns it into a warning, or a failure with
    ``bridges_slow = fail``.
    """

    def __init__(
        self, message: str, *, framework: str, function: str, seconds: float, stack: list[str]
    ) -> None:
        super().__init__(message)
        self.framework = framework
        """The framework whose dispatch held the loop ("twisted", "gevent", "asyncio", ...)."""
        self.function = function
        """The user's function that was running, qualified (``myapp.proto.Echo.dataReceived``)."""
        self.seconds = seconds
        """How long it had held the loop when it was caught (at least ``slow_callback``)."""
        self.stack = stack
        """The loop thread's stack when it was caught, formatted lines, innermost last."""
