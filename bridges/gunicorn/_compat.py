"""What the worker relies on in gunicorn beyond ``gunicorn.workers.base.Worker``.

gunicorn's ASGI protocol (``gunicorn.asgi.protocol.ASGIProtocol``, since
gunicorn 25) is built with the worker as its only argument and reads and
writes these worker attributes: ``cfg``, ``log``, ``asgi``, ``loop``,
``nr_conns`` (incremented in ``connection_made``, decremented in
``connection_lost``), ``nr`` and ``max_requests`` (it sets ``alive = False``
once ``nr`` reaches ``max_requests``), ``alive`` and ``state`` (the lifespan
state copied into each scope).  ``gunicorn.asgi.lifespan.LifespanManager``
takes ``(app, logger, state)``.  Checked on gunicorn 25.0-27.0;
``tests/test_gunicorn_compat.py`` fails if the contract changes.
"""

from __future__ import annotations

from typing import Any

import gunicorn

__all__ = ["ASGIProtocol", "LifespanManager", "check_version"]

OLDEST = (25, 0)


def _version() -> tuple[int, ...]:
    return tuple(int(part) for part in gunicorn.__version__.split(".")[:2] if part.isdigit())


def check_version() -> None:
    """Refuse, with the fix, a gunicorn too old to have its ASGI protocol."""
    from .._errors import FrameworkNotInstalledError

    if _version() < OLDEST:
        raise FrameworkNotInstalledError(
            f"bridges.gunicorn needs gunicorn >= {OLDEST[0]}.{OLDEST[1]} (its ASGI protocol), "
            f"but gunicorn {gunicorn.__version__} is installed. Upgrade it: "
            "pip install 'tulip-bridges[gunicorn]'."
        )


def __getattr__(name: str) -> Any:
    # Imported on first use: importing bridges.gunicorn must stay cheap and
    # must not fail on a gunicorn without an ASGI package before the check above.
    if name == "ASGIProtocol":
        from gunicorn.asgi.protocol import ASGIProtocol

        return ASGIProtocol
    if name == "LifespanManager":
        from gunicorn.asgi.lifespan import LifespanManager

        return LifespanManager
    raise AttributeError(name)
