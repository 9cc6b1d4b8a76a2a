"""The asyncore adapter's errors (members of the hub's error families)."""

from __future__ import annotations

from .. import _errors
from .._errors import BridgeError

__all__ = [
    "AsyncoreBridgeError",
    "AsyncoreTypeError",
    "HubOwnsLoopError",
    "NotAttachedError",
    "WrongThreadError",
]


class AsyncoreBridgeError(BridgeError):
    """Base of the errors specific to asyncore on the hub."""


class AsyncoreTypeError(AsyncoreBridgeError, TypeError):
    """An asyncore helper was given an object of the wrong kind (a map, a module)."""


class HubOwnsLoopError(AsyncoreBridgeError, _errors.HubOwnsLoopError):
    """Legacy code called the blocking ``asyncore.loop()`` inside the hub."""


class WrongThreadError(AsyncoreBridgeError, RuntimeError):
    """A hub-driven socket map was changed from a thread other than the hub's."""


class NotAttachedError(AsyncoreBridgeError, _errors.NotAttachedError):
    """An asyncore helper was used on a hub that does not have asyncore attached."""
