"""What ``python -m bridges doctor`` says about hub workers in this environment."""

from __future__ import annotations

import os

from .._doctor import _dist_version as _version
from ._settings import ENV_FRAMEWORKS, parse_frameworks

__all__ = ["report"]


def report(attaching: list[str]) -> list[str]:
    """Lines on whether ``-k bridges.gunicorn.HubWorker`` can run here and what it attaches.

    ``attaching`` are the frameworks the doctor saw attach, which is what a
    worker attaches with ``BRIDGES_FRAMEWORKS=auto``.
    """
    version = _version("gunicorn")
    if version is None:
        return ["gunicorn not installed (pip install 'tulip-bridges[gunicorn]')"]
    from . import _compat

    try:
        _compat.check_version()
    except ImportError as exc:
        return [f"gunicorn {version}: {exc}"]
    setting = os.environ.get(ENV_FRAMEWORKS, "auto")
    wanted = parse_frameworks(setting)
    frameworks = attaching if wanted == "auto" else list(wanted or [])
    threads = (
        f"a pool of --threads threads (a2wsgi {_version('a2wsgi')})"
        if _version("a2wsgi")
        else "nothing: install a2wsgi (pip install 'tulip-bridges[gunicorn]')"
    )
    return [
        f"gunicorn {version}: -k bridges.gunicorn.HubWorker runs one hub per worker",
        f"each worker attaches: {', '.join(frameworks) or 'none'} ({ENV_FRAMEWORKS}={setting})",
        "WSGI views run in: "
        + ("a greenlet per request (gevent attached)" if "gevent" in frameworks else threads),
        "ASGI apps run on: the hub's loop, served by gunicorn's ASGI protocol",
    ]
