"""What the worker relies on in gunicorn beyond ``gunicorn.workers.base.Worker``.

gunicorn's ASGI protocol (``gunicorn.asgi.protocol.ASGIProtocol``, since
gunicorn 25) is built with the worker as its only argument and reads and
writes these worker attributes: ``cfg``, ``log``, ``asgi``, ``loop``,
``nr_conns`` (incremented in ``connection_made``, decremented in
``connection_lost``), ``nr`` and ``max_requests`` (it sets ``alive = False``
once ``nr`` reaches ``max_requests``), ``alive`` and ``state`` (the lifespan
state copied into each scope).  ``gunicorn.asgi.lifespan.LifespanManager``
takes ``(app, logger, state)``.  Checked on gunicorn 25.0-27.0; before 27.0
the protocol does not decrement ``nr_conns`` when a connection closes, so
``--worker-connections`` slots are never given back and a worker stops
answering after that many connections: 27.0 is the oldest supported.
``tests/test_gunicorn_compat.py`` fails if the contract changes.
"""

from __future__ import annotations

from typing import Any

import gunicorn

__all__ = ["asgi_protocol", "check_version", "lifespan_manager", "ssl_context"]

OLDEST = (27, 0)


def _version() -> tuple[int, ...]:
    return tuple(int(part) for part in gunicorn.__version__.split(".")[:2] if part.isdigit())


def check_version() -> None:
    """Refuse, with the fix, a gunicorn whose ASGI protocol the worker cannot use."""
    from .._errors import FrameworkNotInstalledError

    if _version() < OLDEST:
        raise FrameworkNotInstalledError(
            f"bridges.gunicorn needs gunicorn >= {OLDEST[0]}.{OLDEST[1]} (its ASGI protocol as "
            "the worker uses it), "
            f"but gunicorn {gunicorn.__version__} is installed. Upgrade it: "
            "pip install 'tulip-bridges[gunicorn]'."
        )


def ssl_context(cfg: Any) -> Any:
    """gunicorn's TLS context for its ``--certfile``/``--keyfile`` settings."""
    from gunicorn.sock import ssl_context as make

    return make(cfg)


def asgi_protocol(worker: Any) -> Any:
    """gunicorn's HTTP/1 and HTTP/2 ASGI protocol for one connection of ``worker``."""
    from gunicorn.asgi.protocol import ASGIProtocol

    return ASGIProtocol(worker)


def lifespan_manager(app: Any, log: Any, state: dict[str, Any]) -> Any:
    """gunicorn's runner of the ASGI lifespan protocol (``startup()``, ``shutdown()``)."""
    from gunicorn.asgi.lifespan import LifespanManager

    return LifespanManager(app, log, state)
