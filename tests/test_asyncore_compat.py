"""The private detail of asyncore the adapter relies on (``dispatcher._map``), by behaviour."""

from __future__ import annotations

import socket
import warnings
from typing import Any

from bridges.asyncore import _compat

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore


def test_map_of_is_the_map_a_dispatcher_registered_itself_in() -> None:
    own: dict[int, Any] = {}
    left, right = socket.socketpair()
    try:
        dispatcher = asyncore.dispatcher(left, map=own)
        assert _compat._map_of(dispatcher) is own
        assert own[left.fileno()] is dispatcher
    finally:
        left.close()
        right.close()


def test_a_dispatcher_moved_with_set_map_of_leaves_its_new_map_when_it_closes() -> None:
    """asyncore's close() (del_channel) removes the dispatcher from ``_map``."""
    old: dict[int, Any] = {}
    new: dict[int, Any] = {}
    left, right = socket.socketpair()
    try:
        dispatcher = asyncore.dispatcher(left, map=old)
        fd = left.fileno()
        new[fd] = old.pop(fd)
        _compat._set_map_of(dispatcher, new)
        dispatcher.close()
        assert new == {}
        assert old == {}
    finally:
        right.close()
