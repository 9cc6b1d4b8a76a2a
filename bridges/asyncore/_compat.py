"""Every private detail of asyncore the adapter relies on.

Checked on the stdlib asyncore of Python 3.9-3.11 and pyasyncore 1.0.2-1.0.4;
tests/test_asyncore_compat.py tests the behaviour each relies on.
"""

from __future__ import annotations

from typing import Any


def _map_of(dispatcher: Any) -> Any:
    """The map a dispatcher put itself in.

    ``dispatcher._map`` is private to asyncore; checked on stdlib asyncore
    (Python 3.9-3.11), pyasyncore 1.0.x and waitress's wasyncore 2.x-3.0
    (tests/test_asyncore_compat.py).
    """
    return getattr(dispatcher, "_map", None)


def _set_map_of(dispatcher: Any, socket_map: Any) -> None:
    """Point a dispatcher at the map it was moved to (see :func:`_map_of`)."""
    if hasattr(dispatcher, "_map"):
        dispatcher._map = socket_map
