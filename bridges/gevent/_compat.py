"""Every private detail of gevent (and of asyncio, for gevent's sake) the adapter relies on.

Each function touches one detail, says which versions it was checked on, and
has a test of the *behaviour* relied on in tests/test_gevent_compat.py.  A
detail that has gone fails loudly (an error or a warning that says what is
lost), never by silently switching a feature off.
"""

from __future__ import annotations

import warnings
from typing import Any

import gevent
import gevent.hub

__all__ = ["MISSING", "existing_threadpool"]

MISSING = object()


def existing_threadpool(ghub: gevent.hub.Hub) -> Any:
    """The thread pool ``ghub`` made, or None if it made none.

    ``Hub.threadpool`` creates a pool on first use; the stop sequence only
    wants an existing one.  Checked on gevent 23.9-25.9: ``Hub._threadpool``
    holds it (None until used).  If a gevent release drops the attribute,
    the pool's threads could outlive the hub unnoticed, so this warns.
    """
    pool = getattr(ghub, "_threadpool", MISSING)
    if pool is MISSING:
        warnings.warn(
            f"bridges: gevent {gevent.__version__} has no Hub._threadpool, so the hub cannot "
            "tell whether gevent's thread pool was used and cannot kill it at stop; its "
            "threads may outlive the hub. Kill it yourself (gevent.get_hub().threadpool.kill()) "
            "and report this gevent version to tulip-bridges.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return pool
