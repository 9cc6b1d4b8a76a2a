"""Scale a hub-based service out under gunicorn: one bridges hub per worker process.

::

    gunicorn -k bridges.gunicorn.HubWorker -w 4 app:application
    python -m bridges.gunicorn --bridges-frameworks gevent -k bridges.gunicorn.HubWorker app:app

:class:`HubWorker` serves a WSGI app (a greenlet per request when gevent is
attached, else a pool of ``--threads`` threads) or an ASGI app (detected; or
:class:`HubASGIWorker`), with gunicorn's whole worker contract: heartbeat from
the hub's loop, graceful SIGTERM, quick SIGQUIT/SIGINT, ``max_requests``,
``worker_connections``.  See docs/deploy.md.
"""

from __future__ import annotations

from ._settings import ENV_FRAMEWORKS, register_settings
from ._worker import (
    HubASGIWorker,
    HubWorker,
    WorkerStateError,
    current_worker,
    on_startup,
)

__all__ = [
    "ENV_FRAMEWORKS",
    "HubASGIWorker",
    "HubWorker",
    "WorkerStateError",
    "current_worker",
    "on_startup",
    "register_settings",
]
