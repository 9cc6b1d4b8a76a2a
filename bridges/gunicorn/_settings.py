"""The ``--bridges-frameworks`` setting, added to gunicorn through its own Setting mechanism.

gunicorn builds its command line from the settings known when it starts, and
it loads the worker class only afterwards, so a worker module cannot add a
flag to a plain ``gunicorn`` command.  ``python -m bridges.gunicorn`` (or an
embedding application) registers the setting first; with plain ``gunicorn``
the ``BRIDGES_FRAMEWORKS`` environment variable (``-e BRIDGES_FRAMEWORKS=...``
works too) says the same.  Registering is explicit, not an import side
effect: importing ``bridges.gunicorn`` changes nothing in gunicorn.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ENV_FRAMEWORKS", "frameworks_from", "register_settings"]

ENV_FRAMEWORKS = "BRIDGES_FRAMEWORKS"
_NAME = "bridges_frameworks"
_registered: list[Any] = []


def register_settings() -> None:
    """Teach gunicorn ``--bridges-frameworks`` (and ``bridges_frameworks`` in a config file).

    Call it before gunicorn builds its configuration: ``python -m
    bridges.gunicorn`` does; an application embedding gunicorn
    (``gunicorn.app.base.BaseApplication``) calls it before creating the
    application.  Calling it again does nothing.
    """
    if _registered:
        return
    from gunicorn.config import Setting, validate_string

    class BridgesFrameworks(Setting):  # type: ignore[misc]  # gunicorn is untyped
        name = _NAME
        section = "Worker Processes"
        cli = ["--bridges-frameworks"]  # noqa: RUF012 - gunicorn's Setting declares it so
        meta = "NAMES"
        validator = validate_string
        default = None
        desc = """\
            The frameworks each bridges hub worker attaches, comma-separated
            (``gevent,twisted``), ``auto`` for every installed one, or ``none``
            for plain asyncio. Default: the ``BRIDGES_FRAMEWORKS`` environment
            variable, else ``auto``.
            """

    _registered.append(BridgesFrameworks)


def frameworks_from(cfg: Any) -> str | list[str] | None:
    """The frameworks a worker attaches: the setting, else the environment, else "auto"."""
    setting = getattr(cfg, "settings", {}).get(_NAME)
    value = setting.get() if setting is not None else None
    if value is None:
        value = os.environ.get(ENV_FRAMEWORKS, "auto")
    return parse_frameworks(value)


def parse_frameworks(value: str) -> str | list[str] | None:
    value = value.strip()
    if value in ("", "auto"):
        return "auto"
    if value == "none":
        return None
    return [name.strip() for name in value.split(",") if name.strip()]
