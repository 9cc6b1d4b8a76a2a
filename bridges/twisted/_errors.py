"""Twisted's members of the hub's error families, so Twisted's `except` clauses still match."""

from __future__ import annotations

from twisted.internet import error

from .. import _errors

__all__ = ["HubOwnsLoopError", "NotAttachedError", "not_bound"]


class HubOwnsLoopError(_errors.HubOwnsLoopError, error.ReactorAlreadyRunning):
    """Code called ``reactor.run()`` (or ``iterate()``) while the hub runs the reactor."""


class NotAttachedError(_errors.NotAttachedError, error.ReactorNotRunning):
    """A reactor call needs the hub's loop, and no hub runs the reactor (between runs)."""


def not_bound(what: str) -> NotAttachedError:
    return NotAttachedError(
        f"reactor.{what} was called while no bridges hub runs (between bridges.run calls), "
        "so there is no loop to register it with; call it from code running on the hub "
        "(inside bridges.run(..., frameworks=['twisted']) or `async with bridges.Hub():`), "
        "e.g. from a function passed to reactor.callWhenRunning."
    )
