"""Twisted's members of the hub's error families, so Twisted's `except` clauses still match."""

from __future__ import annotations

from twisted.internet import error

from .. import _errors

__all__ = ["HubOwnsLoopError", "NotAttachedError"]


class HubOwnsLoopError(_errors.HubOwnsLoopError, error.ReactorAlreadyRunning):
    """Code called ``reactor.run()`` (or ``iterate()``) while the hub runs the reactor."""


class NotAttachedError(_errors.NotAttachedError, error.ReactorNotRunning):
    """A reactor call needs the hub's loop, and no hub runs the reactor (between runs)."""
